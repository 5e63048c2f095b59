//! The node tree: the committed store, transaction views over it, and the tree
//! operations (read, directory, get/set permissions, write, mkdir, rm) written
//! once over both.
//!
//! Invariants of a [`Store`] (checked by [`Store::check`]): the root `/` exists;
//! every other node's parent exists and lists it among its children; every child a
//! node lists exists; the per-owner node counts and bytes equal what each domain
//! owns;
//! every node's generation is unique and below the store's next generation.
//!
//! Transactions are optimistic: a [`Transaction`] keeps the nodes it changed
//! (copy on write) and, for every path it touched, the generation the committed
//! store had when it first looked (or that the node was absent). Commit succeeds
//! only if none of those changed since; it then applies the changes atomically.
//!
//! Memory accounting (bytes, as Xen's xenstored after XSA-326): a node costs its
//! owner [`node_cost`] (path, name in its parent, value, permission entries and a
//! fixed overhead), and the store keeps every owner's total; a transaction knows
//! the bytes it holds ([`Transaction::bytes`]: one record per path it touched,
//! the copies of the nodes it changed). The operations check an unprivileged
//! caller's budget ([`TreeQuota::byte_budget`]) before they allocate: a path is
//! walked without allocating, and a failed lookup records only the path asked
//! for and the ancestor that decided the answer, never every ancestor.

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
    /// Permission entries a node may carry (the owner's included).
    pub max_perms: usize,
    /// Bytes this request may still add to what the caller is charged
    /// (`ENOSPC` beyond).
    pub byte_budget: usize,
}

/// Fixed cost of a node besides its bytes (map entry, allocations).
pub const NODE_OVERHEAD: usize = 64;
/// Cost of one permission entry after the first.
pub const PERM_ENTRY_COST: usize = 4;
/// Fixed cost of one record a transaction keeps (beside the path).
pub const RECORD_OVERHEAD: usize = 32;

/// What a node at `path` with a `value_len`-byte value and `acl_len` extra
/// permission entries costs its owner.
pub fn cost_of(path: &str, value_len: usize, acl_len: usize) -> usize {
    NODE_OVERHEAD + path.len() + basename(path).len() + value_len + acl_len * PERM_ENTRY_COST
}

/// What `node` at `path` costs its owner.
pub fn node_cost(path: &str, node: &Node) -> usize {
    cost_of(path, node.value.len(), node.perms.acl.len())
}

/// What one domain owns in the committed store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Nodes.
    pub nodes: usize,
    /// Their [`node_cost`]s.
    pub bytes: usize,
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
    /// The node at `path`, if any (a transaction records the lookup).
    fn get(&mut self, path: &str) -> Option<&Node>;
    /// The node at `path`, if any, without recording the lookup.
    fn peek(&self, path: &str) -> Option<&Node>;
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
    owners: BTreeMap<DomId, Usage>,
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
        self.usage(domid).nodes
    }

    /// Nodes and bytes owned by `domid`.
    pub fn usage(&self, domid: DomId) -> Usage {
        self.owners.get(&domid).copied().unwrap_or_default()
    }

    fn generation_of(&self, path: &str) -> Option<u64> {
        self.nodes.get(path).map(|n| n.generation)
    }

    fn count(&mut self, owner: DomId, delta: isize, bytes: usize) {
        let c = self.owners.entry(owner).or_default();
        c.nodes = c.nodes.saturating_add_signed(delta);
        if delta > 0 {
            c.bytes += bytes;
        } else {
            c.bytes = c.bytes.saturating_sub(bytes);
        }
        if c.nodes == 0 {
            self.owners.remove(&owner);
        }
    }

    /// Checks the invariants listed in the module documentation.
    pub fn check(&self) -> Result<(), &'static str> {
        if !self.nodes.contains_key("/") {
            return Err("root missing");
        }
        let mut owners: BTreeMap<DomId, Usage> = BTreeMap::new();
        let mut gens = BTreeSet::new();
        for (path, node) in &self.nodes {
            let u = owners.entry(node.perms.owner).or_default();
            u.nodes += 1;
            u.bytes += node_cost(path, node);
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
            return Err("owner counts or bytes wrong");
        }
        Ok(())
    }
}

impl Tree for Store {
    fn get(&mut self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    fn peek(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    fn put(&mut self, path: &str, mut node: Node) {
        node.generation = self.next_generation;
        self.next_generation += 1;
        self.count(node.perms.owner, 1, node_cost(path, &node));
        if let Some(old) = self.nodes.insert(String::from(path), node) {
            self.count(old.perms.owner, -1, node_cost(path, &old));
        }
    }

    fn delete(&mut self, path: &str) {
        if let Some(old) = self.nodes.remove(path) {
            self.count(old.perms.owner, -1, node_cost(path, &old));
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
    /// Change in the bytes each domain owns.
    owner_bytes: BTreeMap<DomId, isize>,
    /// Bytes held by `overlay` and `accessed`.
    bytes: usize,
    /// Changes to fire at commit (see [`Transaction::add_changes`]).
    changes: Vec<Change>,
}

fn record_cost(path: &str) -> usize {
    RECORD_OVERHEAD + path.len()
}

fn change_cost(c: &Change) -> usize {
    record_cost(&c.path)
        + c.perms
            .iter()
            .map(|p| RECORD_OVERHEAD + p.acl.len() * PERM_ENTRY_COST)
            .sum::<usize>()
}

fn overlay_cost(path: &str, node: &Option<Node>) -> usize {
    record_cost(path) + node.as_ref().map_or(0, |n| node_cost(path, n))
}

impl Transaction {
    /// Bytes the transaction holds: its records of touched paths and its copies
    /// of changed nodes (and of the changes it will fire).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records `changes` to fire at commit; a change equal to one already
    /// recorded is kept once, so repeating a write holds nothing more.
    pub(crate) fn add_changes(&mut self, changes: Vec<Change>) {
        for c in changes {
            if !self.changes.contains(&c) {
                self.bytes += change_cost(&c);
                self.changes.push(c);
            }
        }
    }

    /// Paths the transaction recorded (touched or changed).
    pub fn records(&self) -> usize {
        self.accessed.len() + self.overlay.len()
    }

    /// Change in the bytes `domid` owns that committing would make.
    pub fn owner_bytes_delta(&self, domid: DomId) -> isize {
        self.owner_bytes.get(&domid).copied().unwrap_or(0)
    }

    /// Whether committing now would conflict with changes made since the
    /// transaction first touched its nodes.
    pub fn conflicts_with(&self, store: &Store) -> bool {
        self.accessed
            .iter()
            .any(|(p, g)| store.generation_of(p) != *g)
    }

    /// Applies the transaction to `store` if it does not conflict (`EAGAIN`)
    /// and, when `limit` = `(domid, max_nodes, max_bytes)` is given, would not
    /// leave `domid` owning more than `max_nodes` nodes or `max_bytes` bytes
    /// (`ENOSPC`: concurrent transactions are each checked against the
    /// committed figures). Returns the changes to fire; on an error nothing is
    /// applied.
    pub(crate) fn commit(
        self,
        store: &mut Store,
        limit: Option<(DomId, usize, usize)>,
    ) -> Result<Vec<Change>, XsError> {
        if self.conflicts_with(store) {
            return Err(XsError::EAGAIN);
        }
        if let Some((domid, max_nodes, max_bytes)) = limit {
            let u = store.usage(domid);
            let d = self.owner_delta.get(&domid).copied().unwrap_or(0);
            if d > 0 && u.nodes.saturating_add_signed(d) > max_nodes {
                return Err(XsError::ENOSPC);
            }
            let b = self.owner_bytes_delta(domid);
            if b > 0 && u.bytes.saturating_add_signed(b) > max_bytes {
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
            self.tx.bytes += record_cost(path);
        }
    }

    /// Owner and cost of the node at `path` as the transaction sees it.
    fn current(&mut self, path: &str) -> Option<(DomId, usize)> {
        self.get(path).map(|n| (n.perms.owner, node_cost(path, n)))
    }

    fn delta(&mut self, owner: DomId, d: isize, bytes: usize) {
        *self.tx.owner_delta.entry(owner).or_insert(0) += d;
        let b = self.tx.owner_bytes.entry(owner).or_insert(0);
        let bytes = bytes as isize;
        *b += if d > 0 { bytes } else { -bytes };
    }

    fn set_overlay(&mut self, path: &str, node: Option<Node>) {
        let add = overlay_cost(path, &node);
        match self.tx.overlay.insert(String::from(path), node) {
            Some(old) => {
                self.tx.bytes = self.tx.bytes.saturating_sub(overlay_cost(path, &old)) + add;
            }
            None => self.tx.bytes += add,
        }
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

    fn peek(&self, path: &str) -> Option<&Node> {
        match self.tx.overlay.get(path) {
            Some(n) => n.as_ref(),
            None => self.base.nodes.get(path),
        }
    }

    fn put(&mut self, path: &str, node: Node) {
        if let Some((old, cost)) = self.current(path) {
            self.delta(old, -1, cost);
        }
        self.touch(path);
        self.delta(node.perms.owner, 1, node_cost(path, &node));
        self.set_overlay(path, Some(node));
    }

    fn delete(&mut self, path: &str) {
        if let Some((old, cost)) = self.current(path) {
            self.delta(old, -1, cost);
        }
        self.touch(path);
        self.set_overlay(path, None);
    }

    fn owned_by(&self, domid: DomId) -> usize {
        let d = self.tx.owner_delta.get(&domid).copied().unwrap_or(0);
        self.base.owned_count(domid).saturating_add_signed(d)
    }
}

/// The error for a missing node: `EACCES` if the nearest existing ancestor is not
/// readable by `who` (so existence does not leak), else `ENOENT`. The walk up
/// allocates nothing; a transaction records only the ancestor that decided.
fn missing(t: &mut dyn Tree, who: &Principal, path: &str) -> XsError {
    let mut p = parent(path);
    while let Some(a) = p {
        if t.peek(a).is_some() {
            return match t.get(a) {
                Some(n) if !n.perms.can_read(who) => XsError::EACCES,
                _ => XsError::ENOENT,
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
/// The missing ancestors are counted and costed without allocating, and the
/// node and byte quotas checked, before anything is created or recorded.
fn create(
    t: &mut dyn Tree,
    who: &Principal,
    quota: &TreeQuota,
    path: &str,
    value: Vec<u8>,
) -> Result<(), XsError> {
    // Find the nearest existing ancestor; count the missing nodes.
    let mut n_missing = 1usize;
    let mut anc = parent(path).ok_or(XsError::EINVAL)?;
    while t.peek(anc).is_none() {
        n_missing += 1;
        anc = parent(anc).ok_or(XsError::EINVAL)?;
    }
    let anc_node = t.get(anc).ok_or(XsError::ENOENT)?.clone();
    if !anc_node.perms.can_write(who) {
        return Err(XsError::EACCES);
    }
    if !who.is_privileged() {
        if t.owned_by(who.domid) + n_missing > quota.max_nodes_per_domain {
            return Err(XsError::ENOSPC);
        }
        let acl = anc_node.perms.acl.len();
        let mut cost = cost_of(path, value.len(), acl);
        let mut p = parent(path);
        while let Some(a) = p.filter(|a| *a != anc) {
            cost += cost_of(a, 0, acl);
            p = parent(a);
        }
        if cost > quota.byte_budget {
            return Err(XsError::ENOSPC);
        }
    }
    let mut perms = anc_node.perms.clone();
    if !who.is_privileged() {
        perms.owner = who.domid;
    }
    // The missing nodes are the prefixes of `path` longer than `anc`, each
    // ending at a '/' (or at the end).
    let start = if anc == "/" { 1 } else { anc.len() + 1 };
    let mut ends: Vec<usize> = path.as_bytes()[start..]
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c == b'/')
        .map(|(i, _)| start + i)
        .collect();
    ends.push(path.len());
    let mut up = anc_node;
    up.children.insert(String::from(basename(&path[..ends[0]])));
    t.put(anc, up);
    // From the top down: each new node lists the next one as its only child.
    let mut value = Some(value);
    for (i, &end) in ends.iter().enumerate() {
        let p = &path[..end];
        let mut children = BTreeSet::new();
        if let Some(&next) = ends.get(i + 1) {
            children.insert(String::from(basename(&path[..next])));
        }
        let v = if end == path.len() {
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
            if !who.is_privileged() && value.len().saturating_sub(n.value.len()) > quota.byte_budget
            {
                return Err(XsError::ENOSPC);
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
    quota: &TreeQuota,
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
    if !who.is_privileged() {
        if perms.acl.len() + 1 > quota.max_perms {
            return Err(XsError::ENOSPC);
        }
        let grow = perms.acl.len().saturating_sub(node.perms.acl.len()) * PERM_ENTRY_COST;
        if grow > quota.byte_budget {
            return Err(XsError::ENOSPC);
        }
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
