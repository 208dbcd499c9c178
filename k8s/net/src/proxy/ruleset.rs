//! One nftables table as data: chains with their rules, sets and maps
//! with their elements. It prints as a whole definition (`nft -f` text)
//! or as the commands turning another ruleset into this one, so a sync
//! touches only what changed (as upstream's knftables transactions):
//! replacing a table of 1,000 Services costs the kernel seconds, changing
//! one of them milliseconds.

use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    /// `type ... hook ... priority ...; policy accept;` for base chains.
    pub base: Option<String>,
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// `set` or `map`.
    pub kind: &'static str,
    /// What goes between the braces before the elements, e.g.
    /// `type ipv4_addr; flags dynamic,timeout; timeout 60s;`.
    pub decl: String,
    /// Key -> value (`None` for sets).
    pub elements: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub table: String,
    pub chains: BTreeMap<String, Chain>,
    pub sets: BTreeMap<String, Set>,
}

fn element(key: &str, value: &Option<String>) -> String {
    match value {
        Some(v) => format!("{key} : {v}"),
        None => key.to_owned(),
    }
}

impl Ruleset {
    pub fn new(table: &str) -> Ruleset {
        Ruleset { table: table.to_owned(), chains: BTreeMap::new(), sets: BTreeMap::new() }
    }

    pub fn chain(&mut self, name: &str, base: Option<&str>, rules: Vec<String>) {
        self.chains.insert(name.to_owned(), Chain { base: base.map(str::to_owned), rules });
    }

    pub fn set(
        &mut self,
        kind: &'static str,
        name: &str,
        decl: &str,
    ) -> &mut BTreeMap<String, Option<String>> {
        &mut self
            .sets
            .entry(name.to_owned())
            .or_insert_with(|| Set { kind, decl: decl.to_owned(), elements: BTreeMap::new() })
            .elements
    }

    /// The whole `table ip <name> { ... }` definition.
    pub fn definition(&self) -> String {
        let mut w = String::with_capacity(256 + self.chains.len() * 160);
        let _ = writeln!(w, "table ip {} {{", self.table);
        for (name, set) in &self.sets {
            let _ = writeln!(w, "\t{} {name} {{\n\t\t{}", set.kind, set.decl);
            if !set.elements.is_empty() {
                w.push_str("\t\telements = {\n");
                let last = set.elements.len() - 1;
                for (i, (k, v)) in set.elements.iter().enumerate() {
                    let sep = if i == last { "" } else { "," };
                    let _ = writeln!(w, "\t\t\t{}{sep}", element(k, v));
                }
                w.push_str("\t\t}\n");
            }
            w.push_str("\t}\n");
        }
        for (name, chain) in &self.chains {
            let _ = writeln!(w, "\tchain {name} {{");
            if let Some(base) = &chain.base {
                let _ = writeln!(w, "\t\t{base}");
            }
            for rule in &chain.rules {
                let _ = writeln!(w, "\t\t{rule}");
            }
            w.push_str("\t}\n");
        }
        w.push_str("}\n");
        w
    }

    /// Chains and rules (base chains' headers aside), to compare with what
    /// the kernel lists.
    pub fn counts(&self) -> (usize, usize) {
        (self.chains.len(), self.chains.values().map(|c| c.rules.len()).sum())
    }

    /// The commands turning `old` (what the kernel has) into `self`, or
    /// `None` when only a whole replacement will do (another table, base
    /// chains or a set's declaration changed). Empty when nothing changed.
    pub fn update_from(&self, old: &Ruleset) -> Option<String> {
        if self.table != old.table {
            return None;
        }
        for (name, chain) in &self.chains {
            if old.chains.get(name).is_some_and(|o| o.base != chain.base)
                || (chain.base.is_some() && !old.chains.contains_key(name))
            {
                return None;
            }
        }
        if old.chains.iter().any(|(name, c)| c.base.is_some() && !self.chains.contains_key(name)) {
            return None;
        }
        if self
            .sets
            .iter()
            .any(|(name, s)| old.sets.get(name).is_some_and(|o| o.kind != s.kind || o.decl != s.decl))
        {
            return None;
        }
        let t = &self.table;
        let mut w = String::new();
        // New sets, new chains (so rules may refer to them), then rules.
        for (name, set) in &self.sets {
            if !old.sets.contains_key(name) {
                let _ = writeln!(w, "add {} ip {t} {name} {{ {} }}", set.kind, set.decl);
            }
        }
        for name in self.chains.keys() {
            if !old.chains.contains_key(name) {
                let _ = writeln!(w, "add chain ip {t} {name}");
            }
        }
        for (name, chain) in &self.chains {
            match old.chains.get(name) {
                Some(o) if o.rules == chain.rules => continue,
                Some(_) => {
                    let _ = writeln!(w, "flush chain ip {t} {name}");
                }
                None => {}
            }
            for rule in &chain.rules {
                let _ = writeln!(w, "add rule ip {t} {name} {rule}");
            }
        }
        // Elements: removed or changed ones out, new or changed ones in.
        for (name, set) in &self.sets {
            let empty = BTreeMap::new();
            let before = old.sets.get(name).map(|s| &s.elements).unwrap_or(&empty);
            let gone: Vec<&str> = before
                .iter()
                .filter(|(k, v)| set.elements.get(*k) != Some(v))
                .map(|(k, _)| k.as_str())
                .collect();
            if !gone.is_empty() {
                let _ = writeln!(w, "delete element ip {t} {name} {{ {} }}", gone.join(", "));
            }
            let new: Vec<String> = set
                .elements
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(v))
                .map(|(k, v)| element(k, v))
                .collect();
            if !new.is_empty() {
                let _ = writeln!(w, "add element ip {t} {name} {{ {} }}", new.join(", "));
            }
        }
        // Chains and sets nothing refers to any more: emptied first, so that
        // removed chains jumping to each other can all go.
        let removed: Vec<&String> = old.chains.keys().filter(|n| !self.chains.contains_key(*n)).collect();
        for name in &removed {
            let _ = writeln!(w, "flush chain ip {t} {name}");
        }
        for name in &removed {
            let _ = writeln!(w, "delete chain ip {t} {name}");
        }
        for (name, set) in old.sets.iter().filter(|(n, _)| !self.sets.contains_key(*n)) {
            let _ = writeln!(w, "delete {} ip {t} {name}", set.kind);
        }
        Some(w)
    }
}

/// Chains and rules in `nft list table` output, to compare with
/// `Ruleset::counts`.
pub fn listed_counts(listing: &str) -> (usize, usize) {
    let (mut chains, mut rules, mut in_chain) = (0, 0, false);
    for line in listing.lines().map(str::trim) {
        if line.starts_with("chain ") && line.ends_with('{') {
            chains += 1;
            in_chain = true;
        } else if in_chain && line == "}" {
            in_chain = false;
        } else if in_chain && !line.is_empty() && !line.starts_with("type ") {
            rules += 1;
        }
    }
    (chains, rules)
}
