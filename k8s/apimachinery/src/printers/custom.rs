//! Tables of custom resources from their CRD version's
//! `additionalPrinterColumns`, as apiextensions-apiserver's
//! `tableconvertor` builds them: `Name` first, then one column per
//! printer column, each cell the first result of its JSONPath.

use serde_json::Value;

use super::duration::{self, human_duration};
use super::fields::{self, str_at};
use super::jsonpath::{JsonPath, JsonPathError, result_text};
use super::{ColumnDefinition, docs};

/// A CRD printer column whose JSONPath does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unrecognized column definition {json_path:?} of printer column {column:?}")]
pub struct PrinterColumnError {
    pub column: String,
    pub json_path: String,
    #[source]
    pub source: JsonPathError,
}

/// The Table columns of one custom resource version.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomColumns {
    columns: Vec<ColumnDefinition>,
    paths: Vec<JsonPath>,
}

impl CustomColumns {
    /// Columns from a CRD version's `additionalPrinterColumns` (a JSON
    /// array of `{name, type, format, description, priority, jsonPath}`).
    /// When there are none (absent, null or empty), a single `Age` column of
    /// type `date` over `.metadata.creationTimestamp`, as upstream defaults.
    pub fn new(additional_printer_columns: &Value) -> Result<CustomColumns, PrinterColumnError> {
        let (columns, error) = Self::build(additional_printer_columns);
        match error {
            Some(e) => Err(e),
            None => Ok(columns),
        }
    }

    /// Upstream's behaviour for an invalid printer column: the columns
    /// before it are kept (the CRD is still served), the rest dropped.
    pub fn lenient(additional_printer_columns: &Value) -> CustomColumns {
        Self::build(additional_printer_columns).0
    }

    fn build(additional_printer_columns: &Value) -> (CustomColumns, Option<PrinterColumnError>) {
        let default_age = [serde_json::json!({
            "name": "Age", "type": "date", "description": docs::CREATION_TIMESTAMP, "jsonPath": ".metadata.creationTimestamp"
        })];
        let specs = match additional_printer_columns.as_array() {
            Some(cols) if !cols.is_empty() => cols.as_slice(),
            _ => &default_age[..],
        };
        let mut table = CustomColumns {
            columns: vec![ColumnDefinition {
                name: "Name".to_string(),
                type_: "string".to_string(),
                format: "name".to_string(),
                description: docs::NAME.to_string(),
                priority: 0,
            }],
            paths: Vec::new(),
        };
        for spec in specs {
            let (column, json_path) = (str_at(spec, &["name"]), str_at(spec, &["jsonPath"]));
            let path = match JsonPath::parse(&format!("{{{json_path}}}")) {
                Ok(path) => path.allow_missing_keys(true),
                Err(source) => {
                    let error = PrinterColumnError {
                        column: column.to_string(),
                        json_path: json_path.to_string(),
                        source,
                    };
                    return (table, Some(error));
                }
            };
            let description = match str_at(spec, &["description"]) {
                "" => format!("Custom resource definition column (in JSONPath format): {json_path}"),
                d => d.to_string(),
            };
            table.columns.push(ColumnDefinition {
                name: column.to_string(),
                type_: str_at(spec, &["type"]).to_string(),
                format: str_at(spec, &["format"]).to_string(),
                description,
                priority: fields::opt_int(spec, &["priority"])
                    .and_then(|p| i32::try_from(p).ok())
                    .unwrap_or(0),
            });
            table.paths.push(path);
        }
        (table, None)
    }

    /// The column definitions, `Name` first.
    pub fn columns(&self) -> &[ColumnDefinition] {
        &self.columns
    }

    /// One object's cells: its name, then each column's value converted to
    /// the column's type (`null` when the path finds nothing).
    pub fn cells(&self, obj: &Value, now_unix: i64) -> Vec<Value> {
        let mut cells = vec![Value::from(fields::name(obj))];
        for (path, column) in self.paths.iter().zip(&self.columns[1..]) {
            let first = path
                .find_results(obj)
                .ok()
                .and_then(|r| r.into_iter().next())
                .and_then(|r| r.into_iter().next());
            cells.push(match first {
                None => Value::Null,
                Some(Value::Null) if column.type_ == "string" => Value::from("<no value>"),
                Some(value) if column.type_ == "string" => Value::from(result_text(&value)),
                Some(value) => cell_for_json_value(&column.type_, &value, now_unix),
            });
        }
        cells
    }
}

/// The columns of a custom resource version (see [`CustomColumns::new`];
/// an invalid column and those after it are dropped, as upstream does).
pub fn custom_columns(additional_printer_columns: &Value) -> Vec<ColumnDefinition> {
    CustomColumns::lenient(additional_printer_columns).columns
}

/// One custom resource's cells for [`custom_columns`]. Parses the columns
/// on every call: build a [`CustomColumns`] once for whole lists.
pub fn custom_cells(additional_printer_columns: &Value, obj: &Value, now_unix: i64) -> Vec<Value> {
    CustomColumns::lenient(additional_printer_columns).cells(obj, now_unix)
}

/// Upstream's `cellForJSONValue`: the value as the column's type, `null`
/// when it does not fit.
fn cell_for_json_value(type_: &str, value: &Value, now_unix: i64) -> Value {
    match (type_, value) {
        ("integer", Value::Number(n)) => n.as_i64().map_or_else(
            || {
                #[allow(clippy::cast_possible_truncation)]
                let truncated = n.as_f64().map(|f| f as i64);
                truncated.map_or(Value::Null, Value::from)
            },
            Value::from,
        ),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, Value::from),
        ("boolean", Value::Bool(b)) => Value::from(*b),
        ("date", Value::String(s)) => Value::from(date_cell(s, now_unix)),
        _ => Value::Null,
    }
}

/// A `date` column: the age of the timestamp, `<unknown>` for an empty
/// one, `<invalid>` when it does not parse.
fn date_cell(s: &str, now_unix: i64) -> String {
    if s.is_empty() || s == "null" {
        return "<unknown>".to_string();
    }
    match duration::parse_rfc3339(s) {
        Some(t) if t == duration::GO_ZERO_TIME => "<unknown>".to_string(),
        Some(t) => human_duration(now_unix.saturating_sub(t)),
        None => "<invalid>".to_string(),
    }
}

#[cfg(test)]
#[path = "custom_tests.rs"]
mod tests;
