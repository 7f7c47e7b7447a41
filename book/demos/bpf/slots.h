/* The map of the index demos: which packet lengths, up to 63 bytes, were
 * seen. */
struct lengths {
	__u8 seen[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lengths);
} short_lengths SEC(".maps");
