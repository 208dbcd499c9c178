//! The resources the API server serves: one table that discovery, routing,
//! OpenAPI and the printers all read.

/// One resource of one group-version, as discovery describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    /// Plural, lowercase: `pods`, `deployments`.
    pub plural: String,
    /// `pod`, `deployment`.
    pub singular: String,
    pub kind: String,
    /// The kind of the list: `PodList`.
    pub list_kind: String,
    pub namespaced: bool,
    /// Discovery verbs: `create`, `delete`, `deletecollection`, `get`,
    /// `list`, `patch`, `update`, `watch`.
    pub verbs: Vec<String>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub subresources: Vec<Subresource>,
}

/// `pods/status`, `deployments/scale`, `pods/log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subresource {
    pub name: String,
    /// What the subresource returns: (group, version, kind). `scale` answers
    /// `autoscaling/v1 Scale`, `status` the resource's own kind.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub verbs: Vec<String>,
}

impl Resource {
    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }
}
