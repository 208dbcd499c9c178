//! Bodies as kubectl v1.37 sends them, encoded here the way upstream's
//! generated `Marshal` does (every non-pointer field written, zero or not),
//! and the JSON upstream makes of them.

use proptest::prelude::*;
use serde_json::json;

use super::schema::{Message, POINTER, Shape, Ty};
use super::table::{MESSAGES, NAMES};
use super::{ProtobufError, decode};

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7f).expect("7 bits") | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).expect("7 bits"));
}

fn key(out: &mut Vec<u8>, number: u32, wire: u8) {
    varint(out, u64::from(number) << 3 | u64::from(wire));
}

fn len_field(number: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    key(&mut out, number, 2);
    varint(&mut out, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

fn varint_field(number: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    key(&mut out, number, 0);
    varint(&mut out, v);
    out
}

/// One message under construction, fields named by their JSON names.
struct M {
    msg: &'static Message,
    name: &'static str,
    fields: Vec<(u32, Vec<u8>)>,
}

fn msg(name: &str) -> M {
    let i = NAMES.iter().position(|n| *n == name).unwrap_or_else(|| panic!("no message {name}"));
    M { msg: &MESSAGES[i], name: NAMES[i], fields: Vec::new() }
}

impl M {
    fn number(&self, json: &str) -> u32 {
        let f = self.msg.fields.iter().find(|f| f.json == json);
        u32::from(f.unwrap_or_else(|| panic!("{} has no field {json}", self.name)).number)
    }

    fn len(mut self, json: &str, payload: &[u8]) -> Self {
        let n = self.number(json);
        self.fields.push((n, len_field(n, payload)));
        self
    }

    fn str(self, json: &str, v: &str) -> Self {
        self.len(json, v.as_bytes())
    }

    fn msg(self, json: &str, m: M) -> Self {
        self.len(json, &m.encode())
    }

    fn int(mut self, json: &str, v: i64) -> Self {
        let n = self.number(json);
        self.fields.push((n, varint_field(n, v.cast_unsigned())));
        self
    }

    fn entry(self, json: &str, k: &str, value: &[u8]) -> Self {
        let mut e = len_field(1, k.as_bytes());
        e.extend(len_field(2, value));
        self.len(json, &e)
    }

    /// The bytes upstream writes: fields by number, every non-pointer
    /// singular field present (zero if not set).
    fn encode(mut self) -> Vec<u8> {
        for f in self.msg.fields {
            let number = u32::from(f.number);
            if f.shape != Shape::Single
                || f.flags & POINTER != 0
                || self.fields.iter().any(|(n, _)| *n == number)
            {
                continue;
            }
            let zero = match f.ty {
                Ty::Str | Ty::Time | Ty::MicroTime | Ty::RawJson => len_field(number, b""),
                Ty::Bytes => continue,
                Ty::Bool | Ty::I32 | Ty::I64 => varint_field(number, 0),
                Ty::Msg(id) => len_field(number, &msg(NAMES[usize::from(id)]).encode()),
                Ty::Quantity => len_field(number, &quantity("0")),
                Ty::IntOrString => len_field(number, &int_or_int(0)),
                Ty::Duration => len_field(number, &varint_field(1, 0)),
            };
            self.fields.push((number, zero));
        }
        self.fields.sort_by_key(|(n, _)| *n);
        self.fields.into_iter().flat_map(|(_, b)| b).collect()
    }
}

fn quantity(s: &str) -> Vec<u8> {
    len_field(1, s.as_bytes())
}

fn int_or_int(i: i32) -> Vec<u8> {
    let mut out = varint_field(1, 0);
    out.extend(varint_field(2, i64::from(i).cast_unsigned()));
    out.extend(len_field(3, b""));
    out
}

fn int_or_str(s: &str) -> Vec<u8> {
    let mut out = varint_field(1, 1);
    out.extend(varint_field(2, 0));
    out.extend(len_field(3, s.as_bytes()));
    out
}

fn timestamp(seconds: i64) -> Vec<u8> {
    let mut out = varint_field(1, seconds.cast_unsigned());
    out.extend(varint_field(2, 0));
    out
}

/// `k8s\0` + runtime.Unknown{typeMeta, raw, "", ""}.
fn body(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = len_field(1, api_version.as_bytes());
    type_meta.extend(len_field(2, kind.as_bytes()));
    let mut out = b"k8s\0".to_vec();
    out.extend(len_field(1, &type_meta));
    out.extend(len_field(2, raw));
    out.extend(len_field(3, b""));
    out.extend(len_field(4, b""));
    out
}

fn meta(name: &str) -> M {
    msg("meta/v1.ObjectMeta").str("name", name)
}

#[test]
fn configmap_from_literal() {
    // kubectl create configmap c1 --from-literal=a=b
    let cm = msg("core/v1.ConfigMap").msg("metadata", meta("c1")).entry("data", "a", b"b");
    let got = decode(&body("v1", "ConfigMap", &cm.encode()));
    assert_eq!(
        got,
        Ok(json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c1"}, "data": {"a": "b"}}))
    );
}

#[test]
fn secret_with_binary_data() {
    // kubectl create secret generic s1 --from-literal=k=v --from-file=bin
    let s = msg("core/v1.Secret")
        .msg("metadata", meta("s1").str("namespace", "default"))
        .entry("data", "k", b"v")
        .entry("data", "bin", &[0, 1, 0xff])
        .str("type", "Opaque");
    assert_eq!(
        decode(&body("v1", "Secret", &s.encode())),
        Ok(json!({
            "kind": "Secret", "apiVersion": "v1",
            "metadata": {"name": "s1", "namespace": "default"},
            "data": {"k": "dg==", "bin": "AAH/"},
            "type": "Opaque"
        }))
    );
}

fn web_deployment(replicas: i64) -> M {
    let labels = || msg("meta/v1.ObjectMeta").entry("labels", "app", b"web");
    let container = msg("core/v1.Container").str("name", "nginx").str("image", "nginx").msg(
        "resources",
        msg("core/v1.ResourceRequirements").entry("limits", "cpu", &quantity("500m")).entry(
            "limits",
            "memory",
            &quantity("128Mi"),
        ),
    );
    let spec = msg("apps/v1.DeploymentSpec")
        .int("replicas", replicas)
        .msg("selector", msg("meta/v1.LabelSelector").entry("matchLabels", "app", b"web"))
        .msg(
            "template",
            msg("core/v1.PodTemplateSpec")
                .msg("metadata", labels())
                .msg("spec", msg("core/v1.PodSpec").msg("containers", container)),
        )
        .msg(
            "strategy",
            msg("apps/v1.DeploymentStrategy").str("type", "RollingUpdate").msg(
                "rollingUpdate",
                msg("apps/v1.RollingUpdateDeployment")
                    .len("maxSurge", &int_or_str("25%"))
                    .len("maxUnavailable", &int_or_int(0)),
            ),
        );
    msg("apps/v1.Deployment").msg("metadata", meta("web").entry("labels", "app", b"web")).msg("spec", spec)
}

#[test]
fn deployment_from_create_deployment() {
    // kubectl create deployment web --image=nginx --replicas=2, plus
    // resources and a rolling update strategy
    let got = decode(&body("apps/v1", "Deployment", &web_deployment(2).encode()));
    assert_eq!(
        got,
        Ok(json!({
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "nginx", "image": "nginx",
                        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}
                    }]}
                },
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
            },
            "status": {}
        }))
    );
}

#[test]
fn present_zero_pointer_is_kept() {
    let got = decode(&body("apps/v1", "Deployment", &web_deployment(0).encode())).expect("decodes");
    assert_eq!(got["spec"]["replicas"], json!(0));
    // Without the field, replicas is absent (the server defaults it).
    let scale =
        msg("autoscaling/v1.Scale").msg("metadata", meta("web")).msg("spec", msg("autoscaling/v1.ScaleSpec"));
    let got = decode(&body("autoscaling/v1", "Scale", &scale.encode())).expect("decodes");
    assert_eq!(got["spec"], json!({}), "ScaleSpec.replicas is a non-pointer omitempty int");
    assert_eq!(got["status"], json!({"replicas": 0}), "ScaleStatus.replicas has no omitempty");
}

#[test]
fn job_with_times() {
    // kubectl create job j1 --image=busybox, with a status as a controller writes it
    let pod = msg("core/v1.PodSpec")
        .msg("containers", msg("core/v1.Container").str("name", "j1").str("image", "busybox"))
        .str("restartPolicy", "Never");
    let job = msg("batch/v1.Job")
        .msg("metadata", meta("j1"))
        .msg(
            "spec",
            msg("batch/v1.JobSpec")
                .msg("template", msg("core/v1.PodTemplateSpec").msg("spec", pod))
                .int("backoffLimit", 0),
        )
        .msg(
            "status",
            msg("batch/v1.JobStatus").len("startTime", &timestamp(1_795_639_228)).int("active", 1),
        );
    assert_eq!(
        decode(&body("batch/v1", "Job", &job.encode())),
        Ok(json!({
            "kind": "Job", "apiVersion": "batch/v1",
            "metadata": {"name": "j1"},
            "spec": {
                "backoffLimit": 0,
                "template": {"metadata": {}, "spec": {
                    "containers": [{"name": "j1", "image": "busybox", "resources": {}}],
                    "restartPolicy": "Never"
                }}
            },
            "status": {"startTime": "2026-11-25T20:40:28Z", "active": 1}
        }))
    );
}

#[test]
fn events_carry_micro_time_and_creation_timestamp() {
    let mut micro = varint_field(1, 1_795_639_228);
    micro.extend(varint_field(2, 123_456_789));
    let ev = msg("events/v1.Event")
        .msg("metadata", meta("e1").len("creationTimestamp", &timestamp(1_795_639_228)))
        .len("eventTime", &micro)
        .str("reason", "Started");
    let got = decode(&body("events.k8s.io/v1", "Event", &ev.encode())).expect("decodes");
    assert_eq!(got["eventTime"], json!("2026-11-25T20:40:28.123456Z"));
    assert_eq!(got["metadata"]["creationTimestamp"], json!("2026-11-25T20:40:28Z"));
    assert_eq!(got["reason"], json!("Started"));
}

#[test]
fn self_subject_access_review_from_can_i() {
    // kubectl auth can-i create pods -n default
    let attrs = msg("authorization/v1.ResourceAttributes")
        .str("namespace", "default")
        .str("verb", "create")
        .str("resource", "pods");
    let ssar = msg("authorization/v1.SelfSubjectAccessReview")
        .msg("metadata", msg("meta/v1.ObjectMeta"))
        .msg("spec", msg("authorization/v1.SelfSubjectAccessReviewSpec").msg("resourceAttributes", attrs));
    assert_eq!(
        decode(&body("authorization.k8s.io/v1", "SelfSubjectAccessReview", &ssar.encode())),
        Ok(json!({
            "kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
            "status": {"allowed": false}
        }))
    );
}

#[test]
fn self_subject_review_from_whoami() {
    let ssr = msg("authentication/v1.SelfSubjectReview");
    assert_eq!(
        decode(&body("authentication.k8s.io/v1", "SelfSubjectReview", &ssr.encode())),
        Ok(json!({
            "kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {}, "status": {"userInfo": {}}
        }))
    );
}

#[test]
fn token_review_extra_is_a_map_of_lists() {
    let mut extra = len_field(1, b"scopes");
    extra.extend(len_field(2, &[len_field(1, b"a"), len_field(1, b"b")].concat()));
    let user = msg("authentication/v1.UserInfo").str("username", "alice").len("extra", &extra);
    let tr = msg("authentication/v1.TokenReview")
        .msg("spec", msg("authentication/v1.TokenReviewSpec").str("token", "t"))
        .msg("status", msg("authentication/v1.TokenReviewStatus").msg("user", user));
    let got = decode(&body("authentication.k8s.io/v1", "TokenReview", &tr.encode())).expect("decodes");
    assert_eq!(got["status"]["user"], json!({"username": "alice", "extra": {"scopes": ["a", "b"]}}));
    assert_eq!(got["status"].get("authenticated"), None, "omitempty drops the written false");
}

#[test]
fn role_rule_without_verbs_is_null_like_go() {
    let role = msg("rbac/v1.Role")
        .msg("metadata", meta("r"))
        .msg("rules", msg("rbac/v1.PolicyRule").len("resources", b"pods"));
    let got = decode(&body("rbac.authorization.k8s.io/v1", "Role", &role.encode())).expect("decodes");
    assert_eq!(got["rules"], json!([{"verbs": null, "resources": ["pods"]}]));
}

#[test]
fn volume_source_is_inlined_and_groups_packed_or_not() {
    let vol = msg("core/v1.Volume").str("name", "data").msg(
        "VolumeSource",
        msg("core/v1.VolumeSource").msg("emptyDir", msg("core/v1.EmptyDirVolumeSource")),
    );
    let mut packed = Vec::new();
    for g in [1000u64, 2000] {
        varint(&mut packed, g);
    }
    let sc =
        msg("core/v1.PodSecurityContext").len("supplementalGroups", &packed).int("supplementalGroups", 3000);
    let pod = msg("core/v1.Pod").msg(
        "spec",
        msg("core/v1.PodSpec").msg("volumes", vol).msg("securityContext", sc).str("runtimeClassName", ""),
    );
    let got = decode(&body("v1", "Pod", &pod.encode())).expect("decodes");
    assert_eq!(got["spec"]["volumes"], json!([{"name": "data", "emptyDir": {}}]));
    assert_eq!(got["spec"]["securityContext"], json!({"supplementalGroups": [1000, 2000, 3000]}));
    assert_eq!(got["spec"]["runtimeClassName"], json!(""), "present empty pointer string is kept");
    assert_eq!(got["spec"]["containers"], json!(null), "containers has no omitempty");

    let bad = msg("core/v1.Volume").str("name", "data").len("VolumeSource", &len_field(1, &[0x08]));
    let pod = msg("core/v1.Pod").msg("spec", msg("core/v1.PodSpec").msg("volumes", bad));
    let err = decode(&body("v1", "Pod", &pod.encode())).expect_err("truncated");
    assert_eq!(err.to_string(), "spec.volumes[0].hostPath: truncated varint");
}

#[test]
fn unknown_fields_are_skipped_and_delete_options_decode() {
    let mut raw = msg("meta/v1.DeleteOptions").str("propagationPolicy", "Foreground").encode();
    raw.extend(len_field(99, b"future"));
    raw.extend(varint_field(98, 7));
    let got = decode(&body("v1", "DeleteOptions", &raw)).expect("decodes");
    assert_eq!(got, json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}));
}

#[test]
fn errors_name_the_field() {
    let container = msg("core/v1.Container").str("name", "nginx").encode();
    let mut broken = container.clone();
    broken.extend([0x80]); // a key varint that never ends
    let pod = msg("core/v1.PodSpec").len("containers", &container).len("containers", &broken);
    let tmpl = msg("core/v1.PodTemplateSpec").msg("spec", pod);
    let d = msg("apps/v1.Deployment").msg("spec", msg("apps/v1.DeploymentSpec").msg("template", tmpl));
    let err = decode(&body("apps/v1", "Deployment", &d.encode())).expect_err("truncated");
    assert_eq!(err.to_string(), "spec.template.spec.containers[1]: truncated varint");

    let cm = msg("core/v1.ConfigMap").int("data", 1);
    let err = decode(&body("v1", "ConfigMap", &cm.encode())).expect_err("wire type");
    assert_eq!(err.to_string(), "data: wire type 0 where length-delimited was expected");

    let item = msg("core/v1.LimitRangeItem").entry("max", "cpu", &quantity(""));
    let lr = msg("core/v1.LimitRange").msg("spec", msg("core/v1.LimitRangeSpec").msg("limits", item));
    let err = decode(&body("v1", "LimitRange", &lr.encode())).expect_err("empty quantity");
    assert_eq!(err.to_string(), "spec.limits[0].max[cpu]: empty quantity");
}

#[test]
fn nesting_is_bounded() {
    // ControllerRevision.data holds a raw object; nest protobuf bodies deeply.
    let mut inner = body("apps/v1", "ControllerRevision", &[]);
    for _ in 0..200 {
        let rev = msg("apps/v1.ControllerRevision").len("data", &len_field(1, &inner));
        inner = body("apps/v1", "ControllerRevision", &rev.encode());
    }
    let err = decode(&inner).expect_err("too deep");
    assert!(err.to_string().contains("nested deeper than 64 levels"), "{err}");

    let mut json_raw =
        msg("apps/v1.ControllerRevision").len("data", &len_field(1, br#"{"spec":{"x":[1,2]}}"#)).encode();
    json_raw.extend(varint_field(3, 4));
    let got = decode(&body("apps/v1", "ControllerRevision", &json_raw)).expect("decodes");
    assert_eq!(got["data"], json!({"spec": {"x": [1, 2]}}));
    assert_eq!(got["revision"], json!(4));
}

#[test]
fn every_prefix_of_a_body_is_an_error_or_a_value() {
    let full = body("apps/v1", "Deployment", &web_deployment(2).encode());
    for end in 0..full.len() {
        let _ = decode(&full[..end]);
    }
    assert_eq!(decode(&full[..3]), Err(ProtobufError::Magic));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"k8s\0".to_vec();
        bytes.extend(&tail);
        let _ = decode(&bytes);
    }

    #[test]
    fn random_objects_never_panic(kind in 0usize..4, raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        let (v, k) = [("v1", "Pod"), ("apps/v1", "Deployment"), ("v1", "Secret"), ("authorization.k8s.io/v1", "SelfSubjectAccessReview")][kind];
        let _ = decode(&body(v, k, &raw));
    }

    #[test]
    fn mutated_bodies_never_panic(at in 0usize..400, byte in any::<u8>()) {
        let mut full = body("apps/v1", "Deployment", &web_deployment(2).encode());
        let i = at % full.len();
        full[i] = byte;
        let _ = decode(&full);
    }
}
