//! A set of field paths, stored as a tree: at each node, the path elements
//! that are members (the path ending there is in the set) and the children
//! (paths continuing below). A path can be both a member and a prefix of
//! other members, which `fieldsV1` writes as `".": {}`.
//!
//! Empty children are never kept, so `==` is set equality.

use std::collections::{BTreeMap, BTreeSet};

use super::element::{Path, PathElement};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub fn new() -> Self {
        Set::default()
    }

    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Self {
        let mut s = Set::new();
        for p in paths {
            s.insert(&p.0);
        }
        s
    }

    /// Adds a path; the empty path (the root) is not a member of anything.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Adds `pe` as a member of this node.
    pub fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    /// Puts `child` below `pe` (merged with what is there).
    pub fn insert_child(&mut self, pe: PathElement, child: Set) {
        if child.is_empty() {
            return;
        }
        let slot = self.children.entry(pe).or_default();
        *slot = slot.union(&child);
    }

    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    pub fn is_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    pub fn child(&self, pe: &PathElement) -> Option<&Set> {
        self.children.get(pe)
    }

    pub fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &Set)> {
        self.children.iter()
    }

    fn with_children(members: BTreeSet<PathElement>, children: BTreeMap<PathElement, Set>) -> Self {
        let children = children.into_iter().filter(|(_, c)| !c.is_empty()).collect();
        Set { members, children }
    }

    pub fn union(&self, other: &Set) -> Set {
        let members = self.members.union(&other.members).cloned().collect();
        let mut children = self.children.clone();
        for (pe, c) in &other.children {
            let merged = match children.get(pe) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            children.insert(pe.clone(), merged);
        }
        Set::with_children(members, children)
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, c)| other.children.get(pe).map(|o| (pe.clone(), c.intersection(o))))
            .collect();
        Set::with_children(members, children)
    }

    /// Members of `self` not in `other`, level by level: a member of
    /// `other` does not remove the paths below it.
    pub fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .map(|(pe, c)| match other.children.get(pe) {
                Some(o) => (pe.clone(), c.difference(o)),
                None => (pe.clone(), c.clone()),
            })
            .collect();
        Set::with_children(members, children)
    }

    /// Like [`Set::difference`], but a member of `other` also removes
    /// everything below it.
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter(|(pe, _)| !other.members.contains(pe))
            .map(|(pe, c)| match other.children.get(pe) {
                Some(o) => (pe.clone(), c.recursive_difference(o)),
                None => (pe.clone(), c.clone()),
            })
            .collect();
        Set::with_children(members, children)
    }

    /// The set with every field that leads to a member made a member itself,
    /// so owning `.spec.replicas` also protects `.spec`. (Upstream's
    /// `EnsureNamedFieldsAreMembers` does this for struct fields only; map
    /// keys and list items are members already wherever it matters.)
    pub fn with_parent_fields(&self) -> Set {
        let mut members = self.members.clone();
        let mut children = BTreeMap::new();
        for (pe, c) in &self.children {
            if matches!(pe, PathElement::Field(_)) && !c.is_empty() {
                members.insert(pe.clone());
            }
            children.insert(pe.clone(), c.with_parent_fields());
        }
        Set::with_children(members, children)
    }

    /// Every member path: the members of a node first, then its children,
    /// in order (upstream's `Iterate`).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for m in &self.members {
            prefix.push(m.clone());
            out.push(Path(prefix.clone()));
            prefix.pop();
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(paths: &[&[&str]]) -> Set {
        let paths: Vec<Path> = paths.iter().map(|p| Path::fields(p)).collect();
        Set::from_paths(&paths)
    }

    #[test]
    fn insert_and_has() {
        let s = set(&[&["spec", "replicas"], &["metadata", "labels", "app"]]);
        assert!(s.has(&Path::fields(&["spec", "replicas"]).0));
        assert!(!s.has(&Path::fields(&["spec"]).0));
        assert!(!s.has(&[]));
        assert!(!s.is_empty());
        assert!(Set::new().is_empty());
    }

    #[test]
    fn algebra() {
        let a = set(&[&["a", "x"], &["a", "y"], &["b"]]);
        let b = set(&[&["a", "y"], &["c"]]);
        assert_eq!(a.union(&b), set(&[&["a", "x"], &["a", "y"], &["b"], &["c"]]));
        assert_eq!(a.intersection(&b), set(&[&["a", "y"]]));
        assert_eq!(a.difference(&b), set(&[&["a", "x"], &["b"]]));
        assert_eq!(a.difference(&a), Set::new(), "no empty children are left behind");
    }

    #[test]
    fn recursive_difference_removes_subtrees() {
        let a = set(&[&["status", "phase"], &["spec", "x"]]);
        let status = set(&[&["status"]]);
        assert_eq!(a.difference(&status), a);
        assert_eq!(a.recursive_difference(&status), set(&[&["spec", "x"]]));
    }

    #[test]
    fn parent_fields_become_members() {
        let a = set(&[&["spec", "template", "replicas"]]);
        let p = a.with_parent_fields();
        assert!(p.has(&Path::fields(&["spec"]).0));
        assert!(p.has(&Path::fields(&["spec", "template"]).0));
        assert!(p.has(&Path::fields(&["spec", "template", "replicas"]).0));
    }

    #[test]
    fn paths_list_members_before_children() {
        let a = set(&[&["spec", "template", "x"], &["spec", "replicas"], &["apiVersion"]]);
        let printed: Vec<String> = a.paths().iter().map(ToString::to_string).collect();
        assert_eq!(printed, [".apiVersion", ".spec.replicas", ".spec.template.x"]);
    }
}
