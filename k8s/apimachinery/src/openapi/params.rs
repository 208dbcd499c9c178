//! The parameters of the operations in a v3 document, named and typed as
//! upstream's (clients look them up by name: `kubectl apply` checks that
//! PATCH declares `fieldValidation`).

use serde_json::{Value, json};

fn param(location: &str, name: &str, type_name: &str, description: &str, required: bool) -> Value {
    let mut p = json!({
        "description": description,
        "in": location,
        "name": name,
        "schema": {"type": type_name, "uniqueItems": true},
    });
    if required {
        p["required"] = Value::Bool(true);
    }
    p
}

fn query(name: &str, type_name: &str, description: &str) -> Value {
    param("query", name, type_name, description, false)
}

/// `{name}` in an item path.
pub fn name(kind: &str) -> Value {
    param("path", "name", "string", &format!("name of the {kind}"), true)
}

/// `{namespace}` in a namespaced path.
pub fn namespace() -> Value {
    param("path", "namespace", "string", "object name and auth scope, such as for teams and projects", true)
}

pub fn pretty() -> Value {
    query("pretty", "string", "If 'true', the output is pretty printed.")
}

pub fn dry_run() -> Value {
    query(
        "dryRun",
        "string",
        "When present, modifications are not persisted. Valid values are: - All: all dry run stages will be processed",
    )
}

/// `fieldManager`; `apply` adds that server-side apply requires it.
pub fn field_manager(apply: bool) -> Value {
    let mut description = String::from(
        "fieldManager is a name associated with the actor or entity that is making these changes, at most 128 \
         printable characters.",
    );
    if apply {
        description.push_str(" Required for apply requests (application/apply-patch), optional otherwise.");
    }
    query("fieldManager", "string", &description)
}

pub fn field_validation() -> Value {
    query(
        "fieldValidation",
        "string",
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing \
         unknown or duplicate fields. Valid values are: - Ignore: unknown fields are silently dropped and the last of \
         duplicate fields wins. - Warn: each unknown or duplicate field is reported in a Warning header; the request \
         still succeeds. This is the default. - Strict: the request fails with a BadRequest error listing every \
         unknown and duplicate field.",
    )
}

pub fn force() -> Value {
    query(
        "force",
        "boolean",
        "Force \"forces\" apply requests: the caller re-acquires fields owned by other managers. Must be unset for \
         non-apply patch requests.",
    )
}

/// The query parameters of list and watch, in upstream's (alphabetical)
/// order.
pub fn list() -> Vec<Value> {
    vec![
        allow_watch_bookmarks(),
        continue_token(),
        field_selector(),
        label_selector(),
        limit(),
        resource_version(),
        resource_version_match(),
        send_initial_events(),
        timeout_seconds(),
        watch(),
    ]
}

/// The query parameters of delete.
pub fn delete() -> Vec<Value> {
    vec![
        dry_run(),
        grace_period_seconds(),
        ignore_store_read_error(),
        orphan_dependents(),
        propagation_policy(),
    ]
}

/// The query parameters of deletecollection: list's selection and
/// delete's options.
pub fn delete_collection() -> Vec<Value> {
    vec![
        continue_token(),
        dry_run(),
        field_selector(),
        grace_period_seconds(),
        ignore_store_read_error(),
        label_selector(),
        limit(),
        orphan_dependents(),
        propagation_policy(),
        resource_version(),
        resource_version_match(),
        send_initial_events(),
        timeout_seconds(),
    ]
}

/// The query parameters of `pods/log`.
pub fn log() -> Vec<Value> {
    vec![
        query("container", "string", "The container for which to stream logs."),
        query("follow", "boolean", "Follow the log stream of the pod."),
        query(
            "limitBytes",
            "integer",
            "The number of bytes to read from the server before terminating the log output.",
        ),
        query("previous", "boolean", "Return the logs of the previous terminated container."),
        query(
            "sinceSeconds",
            "integer",
            "A relative time in seconds before the current time from which to show logs.",
        ),
        query("tailLines", "integer", "The number of lines from the end of the logs to show."),
        query("timestamps", "boolean", "Prefix every line of log output with an RFC3339 timestamp."),
    ]
}

fn allow_watch_bookmarks() -> Value {
    query(
        "allowWatchBookmarks",
        "boolean",
        "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
    )
}

fn continue_token() -> Value {
    query(
        "continue",
        "string",
        "The continue option is set to the continue token of a previous list response to retrieve the next chunk.",
    )
}

fn field_selector() -> Value {
    query("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields.")
}

fn label_selector() -> Value {
    query("labelSelector", "string", "A selector to restrict the list of returned objects by their labels.")
}

fn limit() -> Value {
    query("limit", "integer", "limit is a maximum number of responses to return for a list call.")
}

fn resource_version() -> Value {
    query(
        "resourceVersion",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    )
}

fn resource_version_match() -> Value {
    query(
        "resourceVersionMatch",
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    )
}

fn send_initial_events() -> Value {
    query(
        "sendInitialEvents",
        "boolean",
        "With watch=true, start the stream with synthetic events for the current objects, then a bookmark annotated \
         \"k8s.io/initial-events-end\". Requires resourceVersionMatch=NotOlderThan.",
    )
}

fn timeout_seconds() -> Value {
    query("timeoutSeconds", "integer", "Timeout for the list/watch call.")
}

fn watch() -> Value {
    query(
        "watch",
        "boolean",
        "Watch for changes to the described resources and return them as a stream of events.",
    )
}

fn grace_period_seconds() -> Value {
    query("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted.")
}

fn ignore_store_read_error() -> Value {
    query(
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        "boolean",
        "Delete the resource even if it cannot be read from storage (corrupt), skipping finalizers and preconditions.",
    )
}

fn orphan_dependents() -> Value {
    query(
        "orphanDependents",
        "boolean",
        "Deprecated: use propagationPolicy. Should the dependent objects be orphaned.",
    )
}

fn propagation_policy() -> Value {
    query(
        "propagationPolicy",
        "string",
        "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_have_upstream_names_and_types() {
        assert_eq!(field_validation()["name"], "fieldValidation");
        assert_eq!(field_validation()["in"], "query");
        assert_eq!(force()["schema"]["type"], "boolean");
        assert_eq!(namespace()["required"], true);
        assert!(pretty().get("required").is_none());
        let names: Vec<_> =
            list().iter().map(|p| p["name"].as_str().unwrap_or_default().to_string()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(names.contains(&"sendInitialEvents".to_string()));
    }
}
