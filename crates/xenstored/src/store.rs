//! The node tree: the committed store, transaction views over it, and the tree
//! operations (read, directory, get/set permissions, write, mkdir, rm) written
//! once over both.
//!
//! Invariants of a [`Store`] (checked by [`Store::check`]): the root `/` exists;
//! every other node's parent exists and lists it among its children; every child a
//! node lists exists; the per-owner node counts equal the nodes each domain owns;
//! every node's generation is unique and below the store's next generation.
//!
//! Transactions are optimistic: a [`Transaction`] keeps the nodes it changed
//! (copy on write) and, for every path it touched, the generation the committed
//! store had when it first looked (or that the node was absent). Commit succeeds
//! only if none of those changed since; it then applies the changes atomically.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use xen_abi::domid::DomId;

use crate::error::XsError;
use crate::path::{basename, join, parent};
use crate::perms::{Access, Perms, Principal};

/// One node of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The value (arbitrary bytes).
    pub value: Vec<u8>,
    /// Who may access it.
    pub perms: Perms,
    /// Names of the children.
    pub children: BTreeSet<String>,
    /// Bumped on every committed change of this node.
    pub generation: u64,
}

/// Limits on what an unprivileged domain may do to the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeQuota {
    /// Nodes a domain may own.
    pub max_nodes_per_domain: usize,
    /// Longest value a domain may write.
    pub max_value_size: usize,
}

/// A change that may fire watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Canonical path of the node changed.
    pub path: String,
    /// The node (and its subtree) was removed.
    pub removed: bool,
    /// Permission lists deciding who may see the event: a watcher readable by any
    /// of them is told.
    pub perms: Vec<Perms>,
}

/// The view the tree operations work on: the committed store or a transaction.
pub(crate) trait Tree {
    /// The node at `path`, if any.
    fn get(&mut self, path: &str) -> Option<&Node>;
    /// Creates or replaces the node at `path`.
    fn put(&mut self, path: &str, node: Node);
    /// Removes the node at `path` (not its children).
    fn delete(&mut self, path: &str);
    /// Nodes currently owned by `domid` in this view.
    fn owned_by(&self, domid: DomId) -> usize;
}

/// The committed tree.
#[derive(Clone, Debug)]
pub struct Store {
    nodes: BTreeMap<String, Node>,
    owners: BTreeMap<DomId, usize>,
    next_generation: u64,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// A store holding only the root, owned by dom0 and readable by nobody else.
    pub fn new() -> Store {
        let mut s = Store {
            nodes: BTreeMap::new(),
            owners: BTreeMap::new(),
            next_generation: 1,
        };
        s.put(
            "/",
            Node {
                value: Vec::new(),
                perms: Perms::new(0, Access::None),
                children: BTreeSet::new(),
                generation: 0,
            },
        );
        s
    }

    /// The node at canonical `path`.
    pub fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Number of nodes, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: the root exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Nodes owned by `domid`.
    pub fn owned_count(&self, domid: DomId) -> usize {
        self.owners.get(&domid).copied().unwrap_or(0)
    }

    fn generation_of(&self, path: &str) -> Option<u64> {
        self.nodes.get(path).map(|n| n.generation)
    }

    fn count(&mut self, owner: DomId, delta: isize) {
        let c = self.owners.entry(owner).or_insert(0);
        *c = c.saturating_add_signed(delta);
        if *c == 0 {
            self.owners.remove(&owner);
        }
    }

    /// Checks the invariants listed in the module documentation.
    pub fn check(&self) -> Result<(), &'static str> {
        if !self.nodes.contains_key("/") {
            return Err("root missing");
        }
        let mut owners: BTreeMap<DomId, usize> = BTreeMap::new();
        let mut gens = BTreeSet::new();
        for (path, node) in &self.nodes {
            *owners.entry(node.perms.owner).or_insert(0) += 1;
            if node.generation >= self.next_generation || !gens.insert(node.generation) {
                return Err("bad generation");
            }
            if let Some(p) = parent(path) {
                match self.nodes.get(p) {
                    Some(pn) if pn.children.contains(basename(path)) => {}
                    Some(_) => return Err("node not listed by its parent"),
                    None => return Err("node without parent"),
                }
            }
            for c in &node.children {
                if !self.nodes.contains_key(&join(path, c)) {
                    return Err("listed child missing");
                }
            }
        }
        if owners != self.owners {
            return Err("owner counts wrong");
        }
        Ok(())
    }
}

impl Tree for Store {
    fn get(&mut self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    fn put(&mut self, path: &str, mut node: Node) {
        node.generation = self.next_generation;
        self.next_generation += 1;
        self.count(node.perms.owner, 1);
        if let Some(old) = self.nodes.insert(String::from(path), node) {
            self.count(old.perms.owner, -1);
        }
    }

    fn delete(&mut self, path: &str) {
        if let Some(old) = self.nodes.remove(path) {
            self.count(old.perms.owner, -1);
        }
    }

    fn owned_by(&self, domid: DomId) -> usize {
        self.owned_count(domid)
    }
}

/// A transaction's private state.
#[derive(Clone, Debug, Default)]
pub struct Transaction {
    /// Nodes written (`Some`) or removed (`None`) by the transaction.
    overlay: BTreeMap<String, Option<Node>>,
    /// Generation of each touched path in the committed store at first touch.
    accessed: BTreeMap<String, Option<u64>>,
    /// Change in the number of nodes each domain owns.
    owner_delta: BTreeMap<DomId, isize>,
    /// Changes to fire at commit.
    pub(crate) changes: Vec<Change>,
}

impl Transaction {
    /// Whether committing now would conflict with changes made since the
    /// transaction first touched its nodes.
    pub fn conflicts_with(&self, store: &Store) -> bool {
        self.accessed
            .iter()
            .any(|(p, g)| store.generation_of(p) != *g)
    }

    /// Applies the transaction to `store` if it does not conflict (`EAGAIN`)
    /// and, when `limit` = `(domid, max)` is given, would not leave `domid`
    /// owning more than `max` nodes (`ENOSPC`: concurrent transactions are each
    /// checked against the committed count). Returns the changes to fire; on an
    /// error nothing is applied.
    pub(crate) fn commit(
        self,
        store: &mut Store,
        limit: Option<(DomId, usize)>,
    ) -> Result<Vec<Change>, XsError> {
        if self.conflicts_with(store) {
            return Err(XsError::EAGAIN);
        }
        if let Some((domid, max)) = limit {
            let d = self.owner_delta.get(&domid).copied().unwrap_or(0);
            if d > 0 && store.owned_count(domid).saturating_add_signed(d) > max {
                return Err(XsError::ENOSPC);
            }
        }
        for (path, node) in self.overlay {
            match node {
                Some(n) => store.put(&path, n),
                None => store.delete(&path),
            }
        }
        Ok(self.changes)
    }
}

/// A transaction seen through the committed store.
pub(crate) struct TxView<'a> {
    pub base: &'a Store,
    pub tx: &'a mut Transaction,
}

impl TxView<'_> {
    fn touch(&mut self, path: &str) {
        if !self.tx.accessed.contains_key(path) {
            let g = self.base.generation_of(path);
            self.tx.accessed.insert(String::from(path), g);
        }
    }

    fn current_owner(&mut self, path: &str) -> Option<DomId> {
        self.get(path).map(|n| n.perms.owner)
    }

    fn delta(&mut self, owner: DomId, d: isize) {
        *self.tx.owner_delta.entry(owner).or_insert(0) += d;
    }
}

impl Tree for TxView<'_> {
    fn get(&mut self, path: &str) -> Option<&Node> {
        if self.tx.overlay.contains_key(path) {
            return self.tx.overlay.get(path).and_then(|n| n.as_ref());
        }
        self.touch(path);
        self.base.nodes.get(path)
    }

    fn put(&mut self, path: &str, node: Node) {
        if let Some(old) = self.current_owner(path) {
            self.delta(old, -1);
        }
        self.touch(path);
        self.delta(node.perms.owner, 1);
        self.tx.overlay.insert(String::from(path), Some(node));
    }

    fn delete(&mut self, path: &str) {
        if let Some(old) = self.current_owner(path) {
            self.delta(old, -1);
        }
        self.touch(path);
        self.tx.overlay.insert(String::from(path), None);
    }

    fn owned_by(&self, domid: DomId) -> usize {
        let d = self.tx.owner_delta.get(&domid).copied().unwrap_or(0);
        self.base.owned_count(domid).saturating_add_signed(d)
    }
}

/// The error for a missing node: `EACCES` if the nearest existing ancestor is not
/// readable by `who` (so existence does not leak), else `ENOENT`.
fn missing(t: &mut dyn Tree, who: &Principal, path: &str) -> XsError {
    let mut p = parent(path);
    while let Some(a) = p {
        if let Some(n) = t.get(a) {
            return if n.perms.can_read(who) {
                XsError::ENOENT
            } else {
                XsError::EACCES
            };
        }
        p = parent(a);
    }
    XsError::ENOENT
}

fn readable<'t>(t: &'t mut dyn Tree, who: &Principal, path: &str) -> Result<&'t Node, XsError> {
    // Two lookups keep the borrow checker content without cloning the node.
    if t.get(path).is_none() {
        return Err(missing(t, who, path));
    }
    match t.get(path) {
        Some(n) if n.perms.can_read(who) => Ok(n),
        Some(_) => Err(XsError::EACCES),
        None => Err(XsError::ENOENT),
    }
}

/// `XS_READ`: the value of a node.
pub(crate) fn read(t: &mut dyn Tree, who: &Principal, path: &str) -> Result<Vec<u8>, XsError> {
    Ok(readable(t, who, path)?.value.clone())
}

/// `XS_DIRECTORY`: the children's names, sorted.
pub(crate) fn directory(
    t: &mut dyn Tree,
    who: &Principal,
    path: &str,
) -> Result<Vec<String>, XsError> {
    Ok(readable(t, who, path)?.children.iter().cloned().collect())
}

/// `XS_GET_PERMS`: the permission list of a node.
pub(crate) fn get_perms(t: &mut dyn Tree, who: &Principal, path: &str) -> Result<Perms, XsError> {
    Ok(readable(t, who, path)?.perms.clone())
}

/// Creates `path` and any missing ancestors. The new nodes inherit the
/// permissions of their parent; an unprivileged creator becomes their owner.
fn create(
    t: &mut dyn Tree,
    who: &Principal,
    quota: &TreeQuota,
    path: &str,
    value: Vec<u8>,
) -> Result<(), XsError> {
    // Find the nearest existing ancestor, collecting the missing paths.
    let mut missing_paths = alloc::vec![String::from(path)];
    let mut anc = parent(path).ok_or(XsError::EINVAL)?;
    while t.get(anc).is_none() {
        missing_paths.push(String::from(anc));
        anc = parent(anc).ok_or(XsError::EINVAL)?;
    }
    let anc_node = t.get(anc).ok_or(XsError::ENOENT)?.clone();
    if !anc_node.perms.can_write(who) {
        return Err(XsError::EACCES);
    }
    if !who.is_privileged()
        && t.owned_by(who.domid) + missing_paths.len() > quota.max_nodes_per_domain
    {
        return Err(XsError::ENOSPC);
    }
    let mut perms = anc_node.perms.clone();
    if !who.is_privileged() {
        perms.owner = who.domid;
    }
    let mut up = anc_node;
    up.children.insert(String::from(basename(
        missing_paths[missing_paths.len() - 1].as_str(),
    )));
    t.put(anc, up);
    // From the top down: each new node lists the next one as its only child.
    let mut value = Some(value);
    for (i, p) in missing_paths.iter().enumerate().rev() {
        let mut children = BTreeSet::new();
        if i > 0 {
            children.insert(String::from(basename(&missing_paths[i - 1])));
        }
        let v = if i == 0 {
            value.take().unwrap_or_default()
        } else {
            Vec::new()
        };
        t.put(
            p,
            Node {
                value: v,
                perms: perms.clone(),
                children,
                generation: 0,
            },
        );
    }
    Ok(())
}

fn check_value(who: &Principal, quota: &TreeQuota, value: &[u8]) -> Result<(), XsError> {
    if !who.is_privileged() && value.len() > quota.max_value_size {
        return Err(XsError::ENOSPC);
    }
    Ok(())
}

/// `XS_WRITE`: sets a node's value, creating it and its parents if needed.
pub(crate) fn write(
    t: &mut dyn Tree,
    who: &Principal,
    quota: &TreeQuota,
    path: &str,
    value: &[u8],
) -> Result<Change, XsError> {
    check_value(who, quota, value)?;
    let node = match t.get(path) {
        Some(n) => {
            if !n.perms.can_write(who) {
                return Err(XsError::EACCES);
            }
            let mut n = n.clone();
            n.value = value.to_vec();
            t.put(path, n);
            t.get(path)
        }
        None => {
            create(t, who, quota, path, value.to_vec())?;
            t.get(path)
        }
    };
    Ok(Change {
        path: String::from(path),
        removed: false,
        perms: node.map(|n| n.perms.clone()).into_iter().collect(),
    })
}

/// `XS_MKDIR`: creates an empty node and its parents; an existing node is left
/// alone (and fires nothing).
pub(crate) fn mkdir(
    t: &mut dyn Tree,
    who: &Principal,
    quota: &TreeQuota,
    path: &str,
) -> Result<Option<Change>, XsError> {
    if let Some(n) = t.get(path) {
        return if n.perms.can_write(who) {
            Ok(None)
        } else {
            Err(XsError::EACCES)
        };
    }
    create(t, who, quota, path, Vec::new())?;
    let perms = t.get(path).map(|n| n.perms.clone());
    Ok(Some(Change {
        path: String::from(path),
        removed: false,
        perms: perms.into_iter().collect(),
    }))
}

/// `XS_RM`: removes a node and its subtree. Removing a missing node whose parent
/// exists succeeds without a change; removing `/` is refused.
pub(crate) fn rm(t: &mut dyn Tree, who: &Principal, path: &str) -> Result<Option<Change>, XsError> {
    let Some(parent_path) = parent(path) else {
        return Err(XsError::EINVAL);
    };
    let Some(node) = t.get(path) else {
        return if t.get(parent_path).is_some() {
            Ok(None)
        } else {
            Err(missing(t, who, path))
        };
    };
    if !node.perms.can_write(who) {
        return Err(XsError::EACCES);
    }
    let perms = node.perms.clone();
    // Depth-first removal of the subtree.
    let mut stack = alloc::vec![String::from(path)];
    while let Some(p) = stack.pop() {
        if let Some(n) = t.get(&p) {
            for c in &n.children {
                stack.push(join(&p, c));
            }
        }
        t.delete(&p);
    }
    if let Some(pn) = t.get(parent_path) {
        let mut pn = pn.clone();
        pn.children.remove(basename(path));
        t.put(parent_path, pn);
    }
    Ok(Some(Change {
        path: String::from(path),
        removed: true,
        perms: alloc::vec![perms],
    }))
}

/// `XS_SET_PERMS`: replaces a node's permission list. Needs write access and
/// owner rights; only a privileged domain may change the owner.
pub(crate) fn set_perms(
    t: &mut dyn Tree,
    who: &Principal,
    path: &str,
    perms: Perms,
) -> Result<Change, XsError> {
    let Some(node) = t.get(path) else {
        return Err(missing(t, who, path));
    };
    if !node.perms.can_write(who) || !node.perms.is_owner(who) {
        return Err(XsError::EACCES);
    }
    if !who.is_privileged() && perms.owner != node.perms.owner {
        return Err(XsError::EPERM);
    }
    let mut node = node.clone();
    let old = core::mem::replace(&mut node.perms, perms.clone());
    t.put(path, node);
    Ok(Change {
        path: String::from(path),
        removed: false,
        perms: alloc::vec![old, perms],
    })
}
