//! What can be wrong with a protobuf body.

/// Why [`decode`](super::decode) rejected a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    #[error("body does not start with the protobuf magic \"k8s\\0\"")]
    Magic,
    #[error("envelope {field}: {problem}")]
    Envelope { field: &'static str, problem: Problem },
    #[error("envelope has no kind; set apiVersion and kind in its typeMeta")]
    MissingKind,
    #[error("content encoding {0:?} is not supported; send the object unencoded")]
    ContentEncoding(String),
    #[error("content type {0:?} is not supported; send application/vnd.kubernetes.protobuf or JSON")]
    ContentType(String),
    #[error("no protobuf schema for {api_version} {kind}; send it as JSON")]
    UnknownKind { api_version: String, kind: String },
    /// A field of the object: `path` is its JSON path, `spec.template.spec.containers[0]`.
    #[error("{path}: {problem}")]
    Field { path: String, problem: Problem },
}

/// What was wrong at one place in the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("truncated varint")]
    TruncatedVarint,
    #[error("varint longer than 64 bits")]
    VarintOverflow,
    #[error("length {len} runs past the end of the message ({left} bytes left)")]
    Truncated { len: u64, left: usize },
    #[error("field number 0 or above 2^29-1")]
    FieldNumber,
    #[error("wire type {got} where {want} was expected")]
    WireType { got: u8, want: &'static str },
    #[error("wire type {0} is not supported")]
    UnsupportedWireType(u8),
    #[error("nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("int-or-string type {0} is neither 0 (int) nor 1 (string)")]
    IntOrStringType(i64),
    #[error("empty quantity")]
    EmptyQuantity,
    #[error("time {0} seconds is outside years 0000 to 9999")]
    TimeRange(i64),
    #[error("raw extension is empty")]
    EmptyRaw,
    #[error("raw extension is not JSON: {0}")]
    RawJson(String),
    #[error("schema has no message {0}")]
    MissingMessage(u16),
    #[error("embedded object: {0}")]
    Embedded(Box<ProtobufError>),
}
