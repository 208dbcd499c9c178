//! The status upstream's CRD controllers write once a CRD is accepted:
//! `acceptedNames` (the spec's names with defaults), `storedVersions`,
//! and the `NamesAccepted` and `Established` conditions.

use serde_json::{Value, json};

use super::definition::{CrdNames, list};

/// The status of `crd`. Conditions keep their `lastTransitionTime` from the
/// CRD's current status when they were already true; otherwise they take
/// `now_rfc3339`. Stored versions keep earlier ones and add the storage
/// version.
pub fn status_for(crd: &Value, now_rfc3339: &str) -> Value {
    let names = CrdNames::read(&crd["spec"]["names"]);
    let current = &crd["status"];
    let mut stored: Vec<String> =
        list(&current["storedVersions"]).iter().filter_map(Value::as_str).map(str::to_string).collect();
    for version in list(&crd["spec"]["versions"]) {
        if version["storage"] == true
            && let Some(name) = version["name"].as_str()
            && !stored.iter().any(|s| s == name)
        {
            stored.push(name.to_string());
        }
    }
    let condition = |kind: &str, reason: &str, message: &str| {
        let since = list(&current["conditions"])
            .iter()
            .find(|c| c["type"] == kind && c["status"] == "True")
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or(now_rfc3339);
        json!({
            "type": kind,
            "status": "True",
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        })
    };
    json!({
        "acceptedNames": names.to_json(),
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_names_conditions_and_stored_versions() {
        let crd = json!({
            "spec": {
                "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"]},
                "versions": [{"name": "v1beta1", "storage": false}, {"name": "v1", "storage": true}]
            }
        });
        let status = status_for(&crd, "2024-05-01T00:00:00Z");
        assert_eq!(
            status["acceptedNames"],
            json!({"plural": "crontabs", "singular": "crontab", "shortNames": ["ct"], "kind": "CronTab", "listKind": "CronTabList"})
        );
        assert_eq!(status["storedVersions"], json!(["v1"]));
        assert_eq!(status["conditions"][0]["type"], "NamesAccepted");
        assert_eq!(status["conditions"][0]["reason"], "NoConflicts");
        assert_eq!(status["conditions"][0]["message"], "no conflicts found");
        assert_eq!(status["conditions"][1]["type"], "Established");
        assert_eq!(status["conditions"][1]["reason"], "InitialNamesAccepted");
        assert_eq!(status["conditions"][1]["message"], "the initial names have been accepted");
        assert_eq!(status["conditions"][1]["lastTransitionTime"], "2024-05-01T00:00:00Z");
        assert_eq!(status["conditions"][1]["status"], "True");
    }

    #[test]
    fn keeps_old_transition_times_and_stored_versions() {
        let crd = json!({
            "spec": {"names": {"plural": "a", "kind": "A"}, "versions": [{"name": "v2", "storage": true}]},
            "status": {"storedVersions": ["v1"], "conditions": [
                {"type": "Established", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}
            ]}
        });
        let status = status_for(&crd, "2024-05-01T00:00:00Z");
        assert_eq!(status["storedVersions"], json!(["v1", "v2"]));
        assert_eq!(status["conditions"][1]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(status["conditions"][0]["lastTransitionTime"], "2024-05-01T00:00:00Z");
    }
}
