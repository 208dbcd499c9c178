//! Apply conflicts and how upstream words them.

use super::element::Path;
use super::managers::ManagerId;

/// Another manager owns a field the apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: ManagerId,
    pub path: Path,
}

impl Conflict {
    /// The message of the Status cause: `conflict with "m" using apps/v1`.
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager)
    }
}

/// All conflicts of one apply, grouped by manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflicts(pub Vec<Conflict>);

impl Conflicts {
    /// Sorts by manager (as upstream prints them), keeping each manager's
    /// paths in field order.
    pub fn new(mut conflicts: Vec<Conflict>) -> Self {
        conflicts.sort_by(|a, b| {
            let key = |m: &ManagerId| {
                (m.manager.clone(), m.operation, m.subresource.clone(), m.api_version.clone())
            };
            key(&a.manager).cmp(&key(&b.manager))
        });
        Conflicts(conflicts)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Apply failed with 1 conflict: conflict with "m" using apps/v1:
    /// .spec.replicas`, or for several, one `conflicts with "m":` line per
    /// manager followed by `- <path>` lines.
    pub fn message(&self) -> String {
        if let [only] = self.0.as_slice() {
            return format!("Apply failed with 1 conflict: conflict with {}: {}", only.manager, only.path);
        }
        let mut lines: Vec<String> = Vec::new();
        let mut current: Option<&ManagerId> = None;
        for c in &self.0 {
            if current != Some(&c.manager) {
                lines.push(format!("conflicts with {}:", c.manager));
                current = Some(&c.manager);
            }
            lines.push(format!("- {}", c.path));
        }
        format!("Apply failed with {} conflicts: {}", self.0.len(), lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldpath::managers::Operation;

    fn conflict(manager: &str, operation: Operation, path: &[&str]) -> Conflict {
        Conflict {
            manager: ManagerId {
                manager: manager.into(),
                operation,
                subresource: String::new(),
                api_version: "apps/v1".into(),
            },
            path: Path::fields(path),
        }
    }

    #[test]
    fn one_conflict() {
        let c = Conflicts::new(vec![conflict(
            "kubectl-client-side-apply",
            Operation::Update,
            &["spec", "replicas"],
        )]);
        assert_eq!(
            c.message(),
            r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
        );
        assert_eq!(c.0[0].cause_message(), r#"conflict with "kubectl-client-side-apply" using apps/v1"#);
    }

    #[test]
    fn several_conflicts_group_by_sorted_manager() {
        let c = Conflicts::new(vec![
            conflict("zeta", Operation::Update, &["spec", "replicas"]),
            conflict("alpha", Operation::Apply, &["spec", "paused"]),
            conflict("zeta", Operation::Update, &["spec", "minReadySeconds"]),
        ]);
        assert_eq!(
            c.message(),
            "Apply failed with 3 conflicts: conflicts with \"alpha\":\n- .spec.paused\n\
             conflicts with \"zeta\" using apps/v1:\n- .spec.replicas\n- .spec.minReadySeconds"
        );
    }
}
