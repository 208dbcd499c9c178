//! `/healthz`, `/livez`, `/readyz` as upstream answers them: `ok`, or with
//! `?verbose` one `[+]check ok` line per check and a summary line.

use std::collections::HashMap;

/// Result of one named check.
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
}

/// (HTTP status, body) for an endpoint named `what` (healthz, livez, readyz).
pub fn render(what: &str, checks: &[Check], query: &HashMap<String, String>) -> (u16, String) {
    let healthy = checks.iter().all(|c| c.ok);
    let status = if healthy { 200 } else { 500 };
    if !query.contains_key("verbose") && healthy {
        return (status, "ok".into());
    }
    let mut body = String::new();
    for c in checks {
        if c.ok {
            body.push_str(&format!("[+]{} ok\n", c.name));
        } else {
            body.push_str(&format!("[-]{} failed: reason withheld\n", c.name));
        }
    }
    if healthy {
        body.push_str(&format!("{what} check passed\n"));
    } else {
        body.push_str(&format!("{what} check failed\n"));
    }
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ok_and_verbose_lists() {
        let checks = [Check { name: "ping", ok: true }, Check { name: "datastore", ok: true }];
        assert_eq!(render("readyz", &checks, &HashMap::new()), (200, "ok".into()));
        let q: HashMap<String, String> = [("verbose".to_string(), String::new())].into();
        let (code, body) = render("readyz", &checks, &q);
        assert_eq!(code, 200);
        assert_eq!(body, "[+]ping ok\n[+]datastore ok\nreadyz check passed\n");
        let bad = [Check { name: "datastore", ok: false }];
        let (code, body) = render("readyz", &bad, &HashMap::new());
        assert_eq!(code, 500);
        assert!(body.contains("[-]datastore failed"), "{body}");
    }
}
