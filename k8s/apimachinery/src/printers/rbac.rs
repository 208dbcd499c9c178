//! `rbac.authorization.k8s.io` printers: RoleBinding and
//! ClusterRoleBinding. Roles and ClusterRoles have none (default table).

use serde_json::Value;

use super::docs;
use super::fields::{age, arr_at, name, str_at};
use super::{Column, Printer};

const ROLE_BINDING: &[Column] = &[
    Column::name(),
    Column::string("Role", docs::RB_ROLE_REF),
    Column::age(),
    Column::string("Users", "Users in the roleBinding").wide(),
    Column::string("Groups", "Groups in the roleBinding").wide(),
    Column::string("ServiceAccounts", "ServiceAccounts in the roleBinding").wide(),
];

const CLUSTER_ROLE_BINDING: &[Column] = &[
    Column::name(),
    Column::string("Role", docs::CRB_ROLE_REF),
    Column::age(),
    Column::string("Users", "Users in the clusterRoleBinding").wide(),
    Column::string("Groups", "Groups in the clusterRoleBinding").wide(),
    Column::string("ServiceAccounts", "ServiceAccounts in the clusterRoleBinding").wide(),
];

pub(super) fn printer(kind: &str) -> Option<Printer> {
    match kind {
        "RoleBinding" => Some(Printer { columns: ROLE_BINDING, cells: binding }),
        "ClusterRoleBinding" => Some(Printer { columns: CLUSTER_ROLE_BINDING, cells: binding }),
        _ => None,
    }
}

fn binding(o: &Value, now: i64) -> Vec<Value> {
    let role = format!("{}/{}", str_at(o, &["roleRef", "kind"]), str_at(o, &["roleRef", "name"]));
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for subject in arr_at(o, &["subjects"]) {
        let subject_name = str_at(subject, &["name"]);
        match str_at(subject, &["kind"]) {
            "ServiceAccount" => sas.push(format!("{}/{subject_name}", str_at(subject, &["namespace"]))),
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            _ => {}
        }
    }
    cells![name(o), role, age(o, now), users.join(", "), groups.join(", "), sas.join(", ")]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::printers::testing::{ago, names, row};

    #[test]
    fn bindings_list_subjects_by_kind() {
        assert_eq!(
            names("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
        );
        let b = json!({"metadata": {"name": "admins", "creationTimestamp": ago(40)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [
            {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "system:masters"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "build"}, {"kind": "User", "name": "bob"}
        ]});
        assert_eq!(
            row("rbac.authorization.k8s.io", "ClusterRoleBinding", &b),
            cells!["admins", "ClusterRole/cluster-admin", "40s", "alice, bob", "system:masters", "build/ci"]
        );
        let rb = json!({"metadata": {"name": "view"}, "roleRef": {"kind": "Role", "name": "pod-reader"}});
        assert_eq!(
            row("rbac.authorization.k8s.io", "RoleBinding", &rb),
            cells!["view", "Role/pod-reader", "<unknown>", "", "", ""]
        );
    }
}
