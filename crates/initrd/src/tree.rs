//! The initrd as an in-memory file tree: [`Archive`].
//!
//! Building the tree from the entries of [`newc::parse_entries`]:
//! - each name is normalised with [`path::components`] (`./a`, `a`, `/a` are one path);
//!   a name with a `..` component is rejected; the root's own entry (`.`) must be a
//!   directory;
//! - directories exist explicitly (their own entry) or implicitly (a parent of some
//!   entry; mode 0755, owner 0); an implied directory may later get its explicit
//!   entry, any other repeated path is rejected, as is a path under a non-directory;
//! - hard links (regular files with `c_nlink >= 2` sharing `c_devmajor`, `c_devminor`,
//!   `c_ino`): newc stores the data once, with the last link; members without data
//!   share the data of the last member that has some.
//!
//! Lookups resolve `.`, `..` (physically: the parent of the directory reached, never
//! above the root) and symlinks (absolute targets from the root, relative ones from the
//! link's directory), following at most [`MAX_SYMLINK_FOLLOWS`] links per lookup.
//! File data and names are borrowed from the archive bytes.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::newc::{self, Entry, Error, ErrorKind, FileType, PERM_MASK};
use crate::path::{components, is_absolute};

/// Most symlinks one lookup follows before failing with [`FsError::SymlinkLoop`]
/// (Linux's limit).
pub const MAX_SYMLINK_FOLLOWS: usize = 40;

/// Permission bits of a directory implied by a deeper entry.
pub const IMPLIED_DIR_PERMISSIONS: u32 = 0o755;

/// A node of the tree. [`NodeId::ROOT`] is the root directory; other ids come from
/// lookups on the same [`Archive`]. Passing an id to another archive is a bug: the
/// answers are meaningless and the methods may panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    pub const ROOT: NodeId = NodeId(0);

    fn index(self) -> usize {
        self.0 as usize
    }
}

/// Why a lookup failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// A component of the path does not exist.
    NotFound,
    /// A component used as a directory (or the target of a directory operation) is not one.
    NotADirectory,
    /// A file operation named a directory.
    IsADirectory,
    /// A file operation named a device node, fifo or socket.
    NotAFile,
    /// `read_link` named something that is not a symlink.
    NotASymlink,
    /// More than [`MAX_SYMLINK_FOLLOWS`] symlinks in one lookup.
    SymlinkLoop,
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsError::NotFound => "no such file or directory",
            FsError::NotADirectory => "not a directory",
            FsError::IsADirectory => "is a directory",
            FsError::NotAFile => "not a regular file",
            FsError::NotASymlink => "not a symbolic link",
            FsError::SymlinkLoop => "too many levels of symbolic links",
        })
    }
}

/// What `stat` says about a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub file_type: FileType,
    /// Permission bits (`0o7777` mask).
    pub permissions: u32,
    /// Data length of a file, target length of a symlink, 0 otherwise.
    pub size: usize,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub ino: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    /// Header offset of the node's entry; `None` for a directory only implied by others.
    pub offset: Option<usize>,
}

impl Metadata {
    /// File-type and permission bits, as in `st_mode`.
    pub fn mode(&self) -> u32 {
        self.file_type.mode_bits() | self.permissions
    }
    pub fn is_dir(&self) -> bool {
        self.file_type == FileType::Directory
    }
    pub fn is_file(&self) -> bool {
        self.file_type == FileType::Regular
    }
    pub fn is_symlink(&self) -> bool {
        self.file_type == FileType::Symlink
    }
}

/// One line of a directory listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirEntry<'a> {
    pub name: &'a str,
    pub file_type: FileType,
    /// As [`Metadata::size`].
    pub size: usize,
    pub id: NodeId,
}

#[derive(Debug)]
enum Body<'a> {
    Dir(BTreeMap<&'a str, NodeId>),
    File(&'a [u8]),
    Symlink(&'a str),
    Special,
}

#[derive(Debug)]
struct Node<'a> {
    /// Last path component; empty for the root.
    name: &'a str,
    parent: NodeId,
    meta: Metadata,
    body: Body<'a>,
}

impl<'a> Node<'a> {
    fn implied_dir(name: &'a str, parent: NodeId) -> Node<'a> {
        Node {
            name,
            parent,
            meta: Metadata {
                file_type: FileType::Directory,
                permissions: IMPLIED_DIR_PERMISSIONS,
                size: 0,
                uid: 0,
                gid: 0,
                nlink: 2,
                mtime: 0,
                ino: 0,
                rdev_major: 0,
                rdev_minor: 0,
                offset: None,
            },
            body: Body::Dir(BTreeMap::new()),
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir(_))
    }
}

fn entry_metadata(e: &Entry<'_>) -> Metadata {
    Metadata {
        file_type: e.file_type(),
        permissions: e.mode & PERM_MASK,
        size: match e.file_type() {
            FileType::Regular | FileType::Symlink => e.data.len(),
            _ => 0,
        },
        uid: e.uid,
        gid: e.gid,
        nlink: e.nlink,
        mtime: e.mtime,
        ino: e.ino,
        rdev_major: e.rdev_major,
        rdev_minor: e.rdev_minor,
        offset: Some(e.offset),
    }
}

fn entry_body<'a>(e: &Entry<'a>) -> Result<Body<'a>, Error> {
    Ok(match e.file_type() {
        FileType::Regular => Body::File(e.data),
        FileType::Directory => Body::Dir(BTreeMap::new()),
        FileType::Symlink => Body::Symlink(
            core::str::from_utf8(e.data)
                .map_err(|_| Error::at(e.offset, ErrorKind::BadSymlinkTarget))?,
        ),
        FileType::CharDevice | FileType::BlockDevice | FileType::Fifo | FileType::Socket => {
            Body::Special
        }
    })
}

/// A parsed initrd: its entries and the file tree over them.
#[derive(Debug)]
pub struct Archive<'a> {
    entries: Vec<Entry<'a>>,
    nodes: Vec<Node<'a>>,
}

impl<'a> Archive<'a> {
    /// Parses and validates a newc archive held in `bytes` (borrowed, not copied).
    pub fn parse(bytes: &'a [u8]) -> Result<Archive<'a>, Error> {
        let entries = newc::parse_entries(bytes)?;
        let nodes = build_tree(&entries)?;
        Ok(Archive { entries, nodes })
    }

    /// The archive's entries in archive order (without the trailer).
    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }

    /// Number of nodes in the tree, root and implied directories included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn node(&self, id: NodeId) -> &Node<'a> {
        &self.nodes[id.index()]
    }

    fn child(&self, dir: NodeId, name: &str) -> Result<NodeId, FsError> {
        match &self.node(dir).body {
            Body::Dir(children) => children.get(name).copied().ok_or(FsError::NotFound),
            _ => Err(FsError::NotADirectory),
        }
    }

    /// Resolves `path` (relative to the directory `cwd` unless absolute). With
    /// `follow_last`, a symlink in last position is followed too.
    fn walk(&self, cwd: NodeId, path: &str, follow_last: bool) -> Result<NodeId, FsError> {
        // A trailing slash asks for a directory, behind a final symlink if need be.
        let must_be_dir = path.ends_with('/');
        let follow_last = follow_last || must_be_dir;
        let mut cur = if is_absolute(path) { NodeId::ROOT } else { cwd };
        if !self.node(cur).is_dir() {
            return Err(FsError::NotADirectory);
        }
        // Components still to walk, the next one last.
        let mut pending: Vec<&str> = components(path).rev().collect();
        let mut follows = 0usize;
        while let Some(name) = pending.pop() {
            // Invariant: `cur` is a directory.
            if name == ".." {
                cur = self.node(cur).parent;
                continue;
            }
            let next = self.child(cur, name)?;
            match self.node(next).body {
                Body::Symlink(target) if follow_last || !pending.is_empty() => {
                    follows += 1;
                    if follows > MAX_SYMLINK_FOLLOWS {
                        return Err(FsError::SymlinkLoop);
                    }
                    if is_absolute(target) {
                        cur = NodeId::ROOT;
                    }
                    pending.extend(components(target).rev());
                }
                Body::Dir(_) => cur = next,
                _ if pending.is_empty() && !must_be_dir => return Ok(next),
                _ => return Err(FsError::NotADirectory),
            }
        }
        Ok(cur)
    }

    /// The node `path` names from the directory `cwd`, following symlinks.
    pub fn lookup(&self, cwd: NodeId, path: &str) -> Result<NodeId, FsError> {
        self.walk(cwd, path, true)
    }

    /// As [`Archive::lookup`], but a symlink in last position is returned itself.
    pub fn lookup_nofollow(&self, cwd: NodeId, path: &str) -> Result<NodeId, FsError> {
        self.walk(cwd, path, false)
    }

    /// The directory `path` names from `cwd` (what a shell's `cd` does).
    pub fn chdir(&self, cwd: NodeId, path: &str) -> Result<NodeId, FsError> {
        let id = self.lookup(cwd, path)?;
        if self.node(id).is_dir() {
            Ok(id)
        } else {
            Err(FsError::NotADirectory)
        }
    }

    /// The absolute canonical path of a node (`/` for the root).
    pub fn path_of(&self, id: NodeId) -> String {
        let mut names = Vec::new();
        let mut cur = id;
        while cur != NodeId::ROOT {
            let node = self.node(cur);
            names.push(node.name);
            cur = node.parent;
        }
        if names.is_empty() {
            return String::from("/");
        }
        let mut out = String::new();
        for name in names.iter().rev() {
            out.push('/');
            out.push_str(name);
        }
        out
    }

    /// Metadata of a node (a symlink's own, not its target's).
    pub fn node_metadata(&self, id: NodeId) -> Metadata {
        self.node(id).meta
    }

    fn data(&self, id: NodeId) -> Result<&'a [u8], FsError> {
        match self.node(id).body {
            Body::File(data) => Ok(data),
            Body::Dir(_) => Err(FsError::IsADirectory),
            // `walk` follows final symlinks, so this is a device node or the like.
            Body::Symlink(_) | Body::Special => Err(FsError::NotAFile),
        }
    }

    fn listing(&self, id: NodeId) -> Result<Vec<DirEntry<'a>>, FsError> {
        match &self.node(id).body {
            Body::Dir(children) => Ok(children
                .iter()
                .map(|(&name, &child)| {
                    let meta = self.node(child).meta;
                    DirEntry {
                        name,
                        file_type: meta.file_type,
                        size: meta.size,
                        id: child,
                    }
                })
                .collect()),
            _ => Err(FsError::NotADirectory),
        }
    }

    /// The data of the regular file `path` names from `cwd`.
    pub fn open_at(&self, cwd: NodeId, path: &str) -> Result<&'a [u8], FsError> {
        self.data(self.lookup(cwd, path)?)
    }

    /// The entries of the directory `path` names from `cwd`, sorted by name
    /// (without `.` and `..`).
    pub fn read_dir_at(&self, cwd: NodeId, path: &str) -> Result<Vec<DirEntry<'a>>, FsError> {
        self.listing(self.lookup(cwd, path)?)
    }

    /// Metadata of what `path` names from `cwd`, following symlinks.
    pub fn metadata_at(&self, cwd: NodeId, path: &str) -> Result<Metadata, FsError> {
        Ok(self.node_metadata(self.lookup(cwd, path)?))
    }

    /// Metadata of what `path` names from `cwd`, a final symlink itself.
    pub fn symlink_metadata_at(&self, cwd: NodeId, path: &str) -> Result<Metadata, FsError> {
        Ok(self.node_metadata(self.lookup_nofollow(cwd, path)?))
    }

    /// The target of the symlink `path` names from `cwd`.
    pub fn read_link_at(&self, cwd: NodeId, path: &str) -> Result<&'a str, FsError> {
        match self.node(self.lookup_nofollow(cwd, path)?).body {
            Body::Symlink(target) => Ok(target),
            _ => Err(FsError::NotASymlink),
        }
    }

    /// [`Archive::open_at`] from the root.
    pub fn open(&self, path: &str) -> Result<&'a [u8], FsError> {
        self.open_at(NodeId::ROOT, path)
    }

    /// [`Archive::read_dir_at`] from the root.
    pub fn read_dir(&self, path: &str) -> Result<Vec<DirEntry<'a>>, FsError> {
        self.read_dir_at(NodeId::ROOT, path)
    }

    /// [`Archive::metadata_at`] from the root.
    pub fn metadata(&self, path: &str) -> Result<Metadata, FsError> {
        self.metadata_at(NodeId::ROOT, path)
    }

    /// [`Archive::symlink_metadata_at`] from the root.
    pub fn symlink_metadata(&self, path: &str) -> Result<Metadata, FsError> {
        self.symlink_metadata_at(NodeId::ROOT, path)
    }

    /// [`Archive::read_link_at`] from the root.
    pub fn read_link(&self, path: &str) -> Result<&'a str, FsError> {
        self.read_link_at(NodeId::ROOT, path)
    }
}

/// Hard-link group of a regular-file entry, if it belongs to one.
fn link_key(e: &Entry<'_>) -> Option<(u32, u32, u32)> {
    (e.file_type() == FileType::Regular && e.nlink >= 2).then_some((
        e.dev_major,
        e.dev_minor,
        e.ino,
    ))
}

fn build_tree<'a>(entries: &[Entry<'a>]) -> Result<Vec<Node<'a>>, Error> {
    let mut nodes = vec![Node::implied_dir("", NodeId::ROOT)];
    // Hard-link group of each node, parallel to `nodes`.
    let mut keys: Vec<Option<(u32, u32, u32)>> = vec![None];

    for e in entries {
        let err = |kind| Error::at(e.offset, kind);
        let comps: Vec<&'a str> = components(e.name).collect();
        if comps.contains(&"..") {
            return Err(err(ErrorKind::DotDotInName));
        }
        let Some((&last, parents)) = comps.split_last() else {
            // The root's own entry.
            if e.file_type() != FileType::Directory {
                return Err(err(ErrorKind::RootNotDirectory));
            }
            if nodes[0].meta.offset.is_some() {
                return Err(err(ErrorKind::Duplicate));
            }
            nodes[0].meta = entry_metadata(e);
            continue;
        };

        let mut cur = NodeId::ROOT;
        for &name in parents {
            cur = match lookup_child(&nodes, cur, name) {
                Some(c) if nodes[c.index()].is_dir() => c,
                Some(_) => return Err(err(ErrorKind::ParentNotDirectory)),
                None => {
                    add_child(&mut nodes, cur, Node::implied_dir(name, cur));
                    keys.push(None);
                    NodeId((nodes.len() - 1) as u32)
                }
            };
        }

        match lookup_child(&nodes, cur, last) {
            Some(c) => {
                let node = &mut nodes[c.index()];
                if node.is_dir()
                    && node.meta.offset.is_none()
                    && e.file_type() == FileType::Directory
                {
                    node.meta = entry_metadata(e);
                } else {
                    return Err(err(ErrorKind::Duplicate));
                }
            }
            None => {
                let node = Node {
                    name: last,
                    parent: cur,
                    meta: entry_metadata(e),
                    body: entry_body(e)?,
                };
                add_child(&mut nodes, cur, node);
                keys.push(link_key(e));
            }
        }
    }

    // Hard links: the data lives with the last member of a group that has any.
    let mut group_data: BTreeMap<(u32, u32, u32), &'a [u8]> = BTreeMap::new();
    for e in entries {
        if let Some(key) = link_key(e)
            && !e.data.is_empty()
        {
            group_data.insert(key, e.data);
        }
    }
    for (node, key) in nodes.iter_mut().zip(&keys) {
        if let (Some(key), Body::File(data)) = (key, &mut node.body)
            && data.is_empty()
            && let Some(&shared) = group_data.get(key)
        {
            *data = shared;
            node.meta.size = shared.len();
        }
    }
    Ok(nodes)
}

fn lookup_child(nodes: &[Node<'_>], dir: NodeId, name: &str) -> Option<NodeId> {
    match &nodes[dir.index()].body {
        Body::Dir(children) => children.get(name).copied(),
        _ => None,
    }
}

/// Appends `node` and links it under the directory `parent` (whose child it must not be yet).
fn add_child<'a>(nodes: &mut Vec<Node<'a>>, parent: NodeId, node: Node<'a>) {
    let id = NodeId(nodes.len() as u32);
    let name = node.name;
    nodes.push(node);
    if let Body::Dir(children) = &mut nodes[parent.index()].body {
        children.insert(name, id);
    }
}
