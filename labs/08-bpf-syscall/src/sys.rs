//! The bpf() system call, with no library in between.
//!
//! The kernel takes a command number and a pointer to `union bpf_attr`
//! (include/uapi/linux/bpf.h): one member per command, each a plain C
//! struct. We declare only the members this lab uses, as `#[repr(C)]`
//! structs laid out exactly like the kernel's, and pass the size of the one
//! we fill in; the kernel treats the bytes we did not send as zero.

use std::io;
use std::mem::size_of;

// ANCHOR: commands
/// `enum bpf_cmd`: the first argument of bpf().
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Cmd {
    MapCreate = 0,
    MapLookupElem = 1,
    MapUpdateElem = 2,
    MapDeleteElem = 3,
    MapGetNextKey = 4,
    ObjPin = 6,
    ObjGet = 7,
}

/// `enum bpf_map_type`: we need only the hash table.
pub const BPF_MAP_TYPE_HASH: u32 = 1;

/// Flags of BPF_MAP_UPDATE_ELEM.
pub const BPF_ANY: u64 = 0;
/// Create the entry; fail with EEXIST when the key is already there.
pub const BPF_NOEXIST: u64 = 1;
/// Replace the entry; fail with ENOENT when the key is not there.
pub const BPF_EXIST: u64 = 2;

/// `file_flags` of BPF_OBJ_GET: the new descriptor may only read the map,
/// or only write it. Zero gives both.
pub const BPF_F_RDONLY: u32 = 1 << 3;
pub const BPF_F_WRONLY: u32 = 1 << 4;
// ANCHOR_END: commands

// ANCHOR: attrs
/// `bpf_attr` for BPF_MAP_CREATE (the fields up to `map_name`).
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct MapCreateAttr {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub inner_map_fd: u32,
    pub numa_node: u32,
    /// NUL-padded; the kernel allows letters, digits, `_` and `.`.
    pub map_name: [u8; 16],
}

/// `bpf_attr` for the element commands: LOOKUP, UPDATE, DELETE and
/// GET_NEXT_KEY. Pointers travel as u64 so that the layout is the same for
/// 32- and 64-bit callers.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct ElemAttr {
    pub map_fd: u32,
    /// The kernel aligns the next field to 8 bytes; we spell the gap out.
    pub pad: u32,
    /// Address of the key.
    pub key: u64,
    /// Address of the value (LOOKUP, UPDATE) or of the next key
    /// (GET_NEXT_KEY: the kernel writes it there).
    pub value_or_next_key: u64,
    /// BPF_ANY, BPF_NOEXIST or BPF_EXIST for UPDATE.
    pub flags: u64,
}

/// `bpf_attr` for BPF_OBJ_PIN and BPF_OBJ_GET.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub struct ObjAttr {
    /// Address of a NUL-terminated path inside a bpf filesystem.
    pub pathname: u64,
    /// The map or program to pin.
    pub bpf_fd: u32,
    pub file_flags: u32,
}
// ANCHOR_END: attrs

// ANCHOR: bpf
/// Calls bpf(cmd, attr, sizeof(*attr)) and returns its non-negative result
/// (a new file descriptor for the commands that create one, else 0), or the
/// errno as an `io::Error`.
pub fn bpf<A>(cmd: Cmd, attr: &mut A) -> io::Result<i64> {
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] attr struct
    // whose size we pass along; any addresses inside it were taken by the
    // caller from values that outlive this call.
    let ret =
        unsafe { libc::syscall(libc::SYS_bpf, cmd as libc::c_int, attr as *mut A, size_of::<A>() as libc::c_uint) };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}
// ANCHOR_END: bpf

/// BPF_OBJ_GET: a new descriptor for the object pinned at `path`, with the
/// access `file_flags` allows (0, BPF_F_RDONLY or BPF_F_WRONLY). This is
/// how a second program reaches a pinned map.
pub fn obj_get(path: &std::path::Path, file_flags: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    let mut attr = ObjAttr { pathname: path.as_ptr() as u64, file_flags, ..Default::default() };
    let fd = bpf(Cmd::ObjGet, &mut attr)?;
    // SAFETY: BPF_OBJ_GET returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// The address of `value`, the way bpf_attr wants it, for the kernel to
/// read.
pub fn addr<T>(value: &T) -> u64 {
    value as *const T as u64
}

/// The address of `value`, for the kernel to write into.
pub fn addr_mut<T>(value: &mut T) -> u64 {
    value as *mut T as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_have_the_kernels_layout() {
        // Sizes and offsets from include/uapi/linux/bpf.h.
        assert_eq!(size_of::<MapCreateAttr>(), 44);
        assert_eq!(std::mem::offset_of!(MapCreateAttr, map_name), 28);
        assert_eq!(size_of::<ElemAttr>(), 32);
        assert_eq!(std::mem::offset_of!(ElemAttr, key), 8);
        assert_eq!(std::mem::offset_of!(ElemAttr, flags), 24);
        assert_eq!(size_of::<ObjAttr>(), 16);
    }
}
