//! The order of a merged list, as upstream's "preserve order in strategic
//! merge patch" proposal defines it: `$setElementOrder` first, then the
//! order of the patch list, then the server's order.

use std::collections::HashMap;

use serde_json::Value;

use super::{Merger, PATCH};
use crate::patch::PatchError;

/// Orders the merged `items` (each with its identity): the items named in
/// `order` follow `order`; the others, only on the server, follow `server`
/// and are interleaved so that one goes before a named item exactly when the
/// server had it before that item. Named items the server lacks therefore go
/// before the remaining server-only items, as upstream's `mergeSortedSlice`
/// does.
pub(super) fn arrange(items: Vec<(String, Value)>, order: &[String], server: &[String]) -> Vec<Value> {
    let order_at = first_positions(order);
    let server_at = first_positions(server);
    let (mut named, mut server_only): (Vec<_>, Vec<_>) =
        items.into_iter().partition(|(id, _)| order_at.contains_key(id.as_str()));
    named.sort_by_key(|(id, _)| order_at.get(id.as_str()).copied().unwrap_or(usize::MAX));
    server_only.sort_by_key(|(id, _)| server_at.get(id.as_str()).copied().unwrap_or(usize::MAX));

    let mut arranged = Vec::with_capacity(named.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = named.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((l, _)), Some((r, _))) => {
                matches!((server_at.get(l.as_str()), server_at.get(r.as_str())), (Some(l), Some(r)) if l < r)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, item)) = next {
            arranged.push(item);
        }
    }
    arranged
}

fn first_positions(ids: &[String]) -> HashMap<&str, usize> {
    let mut positions = HashMap::with_capacity(ids.len());
    for (at, id) in ids.iter().enumerate() {
        positions.entry(id.as_str()).or_insert(at);
    }
    positions
}

/// Upstream's check that the patch list names its items in the order of
/// `$setElementOrder`: they must form a subsequence of it, skipping
/// elements that carry a `$patch` directive.
pub(super) fn check_patch_follows_order(
    merger: &Merger<'_>,
    patch: &[Value],
    order: &[Value],
    key: Option<&str>,
) -> Result<(), PatchError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let directive = |item: &Value| item.get(PATCH).is_some();
    let items: Vec<&Value> = patch.iter().filter(|item| key.is_none() || !directive(item)).collect();
    let (mut at_patch, mut at_order) = (0, 0);
    while let (Some(item), Some(wanted)) = (items.get(at_patch), order.get(at_order)) {
        if directive(item) {
            at_patch += 1;
            continue;
        }
        if merger.key_of(item, key)? == merger.key_of(wanted, key)? {
            at_patch += 1;
        }
        at_order += 1;
    }
    if items.iter().skip(at_patch).any(|item| !directive(item)) {
        return Err(PatchError::SetElementOrderMismatch { path: merger.location() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn run(merged: &[&str], order: &[&str], server: &[&str]) -> Vec<Value> {
        let items = merged.iter().map(|name| (name.to_string(), json!(name))).collect();
        arrange(items, &ids(order), &ids(server))
    }

    #[test]
    fn server_only_items_keep_their_place_before_later_named_items() {
        // The proposal's example: A and C changed, B deleted, D added.
        assert_eq!(
            run(&["C", "A", "D"], &["A", "D"], &["B", "C", "A"]),
            [json!("C"), json!("A"), json!("D")]
        );
        // setElementOrder A, B over live C B D A E. The proposal's text
        // says C D E A B; upstream's mergeSortedSlice, which this follows,
        // keeps E after A because the server had it there.
        assert_eq!(
            run(&["C", "B", "D", "A", "E"], &["A", "B"], &["C", "B", "D", "A", "E"]),
            [json!("C"), json!("D"), json!("A"), json!("B"), json!("E")]
        );
    }

    #[test]
    fn new_items_go_before_remaining_server_items() {
        assert_eq!(run(&["1", "2", "3"], &["3"], &["1", "2"]), [json!("3"), json!("1"), json!("2")]);
        assert_eq!(run(&["1", "2", "3"], &["2", "3"], &["1", "2"]), [json!("1"), json!("2"), json!("3")]);
    }
}
