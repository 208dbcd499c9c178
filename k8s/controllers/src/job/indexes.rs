//! Indexed Jobs: completion indexes on pods and the compressed interval
//! lists of `status.completedIndexes` ("1,3-5"), as upstream's
//! `indexed_job_utils.go`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::meta;

pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
const ENV_NAME: &str = "JOB_COMPLETION_INDEX";
/// Upstream's `names.MaxGeneratedNameLength` (63 less the 5 random characters).
const MAX_GENERATED_NAME: usize = 58;

/// Inclusive ranges of indexes, ordered and not touching.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(Vec<(u64, u64)>);

impl Intervals {
    /// Parses `status.completedIndexes`, dropping indexes at or above
    /// `completions` and skipping corrupt parts (as upstream).
    pub fn parse(text: &str, completions: u64) -> Intervals {
        let mut out: Vec<(u64, u64)> = Vec::new();
        if text.is_empty() {
            return Intervals(out);
        }
        for part in text.split(',') {
            let mut limits = part.split('-');
            let Some(Ok(first)) = limits.next().map(str::parse::<u64>) else { continue };
            if first >= completions {
                break;
            }
            let last = match limits.next() {
                Some(l) => match l.parse::<u64>() {
                    Ok(l) => l.min(completions - 1),
                    Err(_) => continue,
                },
                None => first,
            };
            match out.last_mut() {
                Some(prev) if prev.1 + 1 == first => prev.1 = last,
                _ => out.push((first, last)),
            }
        }
        Intervals(out)
    }

    /// These intervals with `indexes` added.
    pub fn with(&self, indexes: impl IntoIterator<Item = u64>) -> Intervals {
        let mut all: Vec<(u64, u64)> = self.0.clone();
        all.extend(indexes.into_iter().map(|i| (i, i)));
        all.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(all.len());
        for (first, last) in all {
            match out.last_mut() {
                Some(prev) if first <= prev.1 + 1 => prev.1 = prev.1.max(last),
                _ => out.push((first, last)),
            }
        }
        Intervals(out)
    }

    pub fn has(&self, ix: u64) -> bool {
        self.0.iter().any(|&(f, l)| f <= ix && ix <= l)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|&(f, l)| l - f + 1).sum()
    }

    /// The first `count` indexes below `completions` not in these intervals.
    pub fn first_missing(&self, count: usize, completions: u64) -> Vec<u64> {
        (0..completions).filter(|i| !self.has(*i)).take(count).collect()
    }
}

/// Upstream's text: two adjacent indexes are listed, three or more are a range.
impl std::fmt::Display for Intervals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, &(first, last)) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{first}")?;
            if last == first + 1 {
                write!(f, ",{last}")?;
            } else if last > first {
                write!(f, "-{last}")?;
            }
        }
        Ok(())
    }
}

/// The pod's completion index (annotation), if it has a valid one.
pub fn of(pod: &Value) -> Option<u64> {
    meta::annotation(pod, COMPLETION_INDEX)?.parse::<u64>().ok()
}

/// The index if it is below `completions`.
pub fn valid(pod: &Value, completions: u64) -> Option<u64> {
    of(pod).filter(|i| *i < completions)
}

/// The indexes of `pods`.
pub fn set_of<'a>(pods: impl IntoIterator<Item = &'a Value>) -> BTreeSet<u64> {
    pods.into_iter().filter_map(of).collect()
}

/// `JOB_COMPLETION_INDEX` from the index label through the downward API,
/// in every container that does not set it (upstream with `PodIndexLabel`).
pub fn add_env(template: &mut Value) {
    let env = json!({"name": ENV_NAME, "valueFrom": {"fieldRef": {
        "fieldPath": format!("metadata.labels['{COMPLETION_INDEX}']"),
    }}});
    for list in ["initContainers", "containers"] {
        let Some(containers) = template["spec"].get_mut(list).and_then(Value::as_array_mut) else { continue };
        for c in containers {
            let has = c["env"].as_array().is_some_and(|e| e.iter().any(|v| v["name"] == ENV_NAME));
            if has {
                continue;
            }
            match c.get_mut("env").and_then(Value::as_array_mut) {
                Some(e) => e.push(env.clone()),
                None => c["env"] = json!([env.clone()]),
            }
        }
    }
}

/// Marks a pod template with its index: annotation, label and hostname.
pub fn stamp(template: &mut Value, job_name: &str, ix: u64) {
    for f in ["annotations", "labels"] {
        if !template["metadata"][f].is_object() {
            template["metadata"][f] = json!({});
        }
        template["metadata"][f][COMPLETION_INDEX] = json!(ix.to_string());
    }
    template["spec"]["hostname"] = json!(format!("{job_name}-{ix}"));
}

/// `<job>-<index>-`, the job name cut so the whole fits a generated name.
pub fn generate_name(job_name: &str, ix: u64) -> String {
    let appendix = format!("-{ix}-");
    let prefix = format!("{job_name}{appendix}");
    if prefix.len() <= MAX_GENERATED_NAME {
        return prefix;
    }
    let keep = MAX_GENERATED_NAME.saturating_sub(appendix.len());
    let mut cut = keep.min(job_name.len());
    while !job_name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{appendix}", &job_name[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_print_compressed_as_upstream() {
        let i = Intervals::default().with([5, 1, 3, 4, 7, 8]);
        assert_eq!(i.to_string(), "1,3-5,7,8");
        assert_eq!(i.total(), 6);
        assert!(i.has(4) && !i.has(2) && !i.has(6));
        assert_eq!(Intervals::default().to_string(), "");
        assert_eq!(i.with([2, 6]).to_string(), "1-8");
    }

    #[test]
    fn parsing_drops_out_of_range_and_corrupt_parts() {
        assert_eq!(Intervals::parse("0-2,4,x,6-9", 8).to_string(), "0-2,4,6,7");
        assert_eq!(Intervals::parse("1,2,3", 10).to_string(), "1-3");
        assert_eq!(Intervals::parse("5-7", 3).to_string(), "");
        assert_eq!(Intervals::parse("", 3).total(), 0);
    }

    #[test]
    fn first_missing_skips_done_indexes() {
        let done = Intervals::parse("0,2-3", 10);
        assert_eq!(done.first_missing(3, 10), [1, 4, 5]);
        assert_eq!(done.first_missing(3, 5), [1, 4]);
    }

    #[test]
    fn templates_carry_the_index() {
        let mut t = json!({"metadata": {}, "spec": {"containers": [
            {"name": "a"}, {"name": "b", "env": [{"name": "JOB_COMPLETION_INDEX", "value": "mine"}]}]}});
        add_env(&mut t);
        stamp(&mut t, "work", 3);
        assert_eq!(t["metadata"]["annotations"][COMPLETION_INDEX], "3");
        assert_eq!(t["metadata"]["labels"][COMPLETION_INDEX], "3");
        assert_eq!(t["spec"]["hostname"], "work-3");
        assert_eq!(
            t["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.labels['batch.kubernetes.io/job-completion-index']"
        );
        assert_eq!(t["spec"]["containers"][1]["env"].as_array().unwrap().len(), 1);
        assert_eq!(of(&t), Some(3));
    }

    #[test]
    fn generated_names_fit() {
        assert_eq!(generate_name("work", 12), "work-12-");
        let long = "x".repeat(70);
        let n = generate_name(&long, 7);
        assert_eq!(n.len(), MAX_GENERATED_NAME);
        assert!(n.ends_with("-7-"));
    }
}
