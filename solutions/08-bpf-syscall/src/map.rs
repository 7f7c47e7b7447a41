//! A BPF hash map from u32 keys to u64 values, driven by raw bpf() calls.
//!
//! Every method is one system call: fill in the command's `bpf_attr`
//! member, point it at our key and value, and let the kernel do the rest.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::sys::{self, Cmd, ElemAttr, MapCreateAttr, ObjAttr};

/// A hash map that lives in the kernel; we hold a file descriptor to it.
/// Closing the last descriptor frees the map unless it is pinned.
#[derive(Debug)]
pub struct CountMap {
    fd: OwnedFd,
}

impl CountMap {
    /// BPF_MAP_CREATE: a hash map named `name` with room for `max_entries`.
    pub fn create(name: &str, max_entries: u32) -> io::Result<Self> {
        let mut attr = MapCreateAttr {
            map_type: sys::BPF_MAP_TYPE_HASH,
            key_size: size_of::<u32>() as u32,
            value_size: size_of::<u64>() as u32,
            max_entries,
            ..Default::default()
        };
        // The kernel keeps 15 bytes and a NUL; bpftool shows the name.
        let len = name.len().min(attr.map_name.len() - 1);
        attr.map_name[..len].copy_from_slice(&name.as_bytes()[..len]);
        let fd = sys::bpf(Cmd::MapCreate, &mut attr)?;
        // SAFETY: BPF_MAP_CREATE returned a new descriptor that nothing
        // else owns.
        Ok(Self { fd: unsafe { OwnedFd::from_raw_fd(fd as i32) } })
    }

    /// A map someone else created, through a descriptor of ours: one that
    /// BPF_OBJ_GET returned for its pin, say.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// The map's attr for an element command on `key`.
    fn elem(&self, key: &u32) -> ElemAttr {
        ElemAttr { map_fd: self.fd.as_raw_fd() as u32, key: sys::addr(key), ..Default::default() }
    }

    /// BPF_MAP_UPDATE_ELEM: stores `value` at `key`. `flags` says whether
    /// the key must be new (BPF_NOEXIST), must exist (BPF_EXIST), or either
    /// (BPF_ANY).
    pub fn update(&self, key: u32, value: u64, flags: u64) -> io::Result<()> {
        let mut attr = self.elem(&key);
        attr.value_or_next_key = sys::addr(&value);
        attr.flags = flags;
        sys::bpf(Cmd::MapUpdateElem, &mut attr).map(drop)
    }

    // ANCHOR: solution
    /// BPF_MAP_LOOKUP_ELEM: the value at `key`, or None when there is none.
    pub fn lookup(&self, key: u32) -> io::Result<Option<u64>> {
        let mut value = 0u64;
        let mut attr = self.elem(&key);
        // The kernel copies the value into our variable.
        attr.value_or_next_key = sys::addr_mut(&mut value);
        match sys::bpf(Cmd::MapLookupElem, &mut attr) {
            Ok(_) => Ok(Some(value)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// BPF_MAP_DELETE_ELEM: removes `key`; ENOENT when it was not there.
    pub fn delete(&self, key: u32) -> io::Result<()> {
        let mut attr = self.elem(&key);
        sys::bpf(Cmd::MapDeleteElem, &mut attr).map(drop)
    }

    /// BPF_MAP_GET_NEXT_KEY: the key after `key` in the map's own order, the
    /// first key when `key` is None, and None after the last key.
    pub fn next_key(&self, key: Option<u32>) -> io::Result<Option<u32>> {
        let mut next = 0u32;
        let mut attr = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            // A NULL key asks for the first one.
            key: key.as_ref().map_or(0, sys::addr),
            value_or_next_key: sys::addr_mut(&mut next),
            ..Default::default()
        };
        match sys::bpf(Cmd::MapGetNextKey, &mut attr) {
            Ok(_) => Ok(Some(next)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// BPF_OBJ_PIN: gives the map a name in a bpf filesystem, so that it
    /// outlives this process.
    pub fn pin(&self, path: &Path) -> io::Result<()> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
        let mut attr =
            ObjAttr { pathname: path.as_ptr() as u64, bpf_fd: self.fd.as_raw_fd() as u32, ..Default::default() };
        sys::bpf(Cmd::ObjPin, &mut attr).map(drop)
    }
    // ANCHOR_END: solution
}
