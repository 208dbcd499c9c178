//! Giving a certificate the request's exact subject.
//!
//! rcgen keeps one value per attribute type in a distinguished name, so it
//! cannot write `O=dev, O=ops` (a user in two groups). The certificate is
//! therefore made by rcgen with a placeholder subject, which is then
//! replaced by the request's subject, byte for byte as upstream's signer
//! copies it, and the to-be-signed part is signed again with the CA key.

use rcgen::SigningKey;

use crate::PkiError;

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;

/// The parts of one DER element: its tag byte, header length and content length.
fn element(der: &[u8]) -> Option<(u8, usize, usize)> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    if first < 0x80 {
        return Some((tag, 2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 || rest.len() < n {
        return None;
    }
    let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((tag, 2 + n, len))
}

/// Splits a DER SEQUENCE's content into its elements (whole, with headers).
fn children(der: &[u8]) -> Option<Vec<&[u8]>> {
    let (tag, header, len) = element(der)?;
    if tag != SEQUENCE || der.len() != header + len {
        return None;
    }
    let mut rest = &der[header..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (_, h, l) = element(rest)?;
        let whole = rest.get(..h + l)?;
        out.push(whole);
        rest = &rest[h + l..];
    }
    Some(out)
}

fn length(n: usize) -> Vec<u8> {
    if let Ok(short) = u8::try_from(n)
        && short < 0x80
    {
        return vec![short];
    }
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let significant = &bytes[skip..];
    let mut out = vec![0x80 | u8::try_from(significant.len()).unwrap_or(0x7f)];
    out.extend_from_slice(significant);
    out
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(length(content.len()));
    out.extend_from_slice(content);
    out
}

fn malformed() -> PkiError {
    PkiError::Csr { problem: "internal error: generated certificate is malformed".to_owned() }
}

/// `cert_der` (signed by `ca_key`) with the subject `placeholder` (exact DER)
/// replaced by `subject` (exact DER), signed again by `ca_key`.
pub(crate) fn replace(
    cert_der: &[u8],
    placeholder: &[u8],
    subject: &[u8],
    ca_key: &impl SigningKey,
) -> Result<Vec<u8>, PkiError> {
    let parts = children(cert_der).ok_or_else(malformed)?;
    let [tbs, algorithm, _signature] = parts[..] else { return Err(malformed()) };
    let fields = children(tbs).ok_or_else(malformed)?;
    // version, serial, signature, issuer, validity, subject, ...: the subject
    // is the first field equal to the placeholder after the issuer.
    let at = fields.iter().skip(4).position(|f| *f == placeholder).ok_or_else(malformed)? + 4;
    let mut content = Vec::with_capacity(tbs.len() + subject.len());
    for (i, f) in fields.iter().enumerate() {
        content.extend_from_slice(if i == at { subject } else { f });
    }
    let tbs = tlv(SEQUENCE, &content);
    let signature = ca_key.sign(&tbs).map_err(PkiError::generate("a certificate signature"))?;
    let mut bits = vec![0u8];
    bits.extend(signature);
    let mut cert = tbs;
    cert.extend_from_slice(algorithm);
    cert.extend(tlv(BIT_STRING, &bits));
    Ok(tlv(SEQUENCE, &cert))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_roundtrip() {
        for n in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536, 1 << 20] {
            let der = tlv(0x04, &vec![7u8; n]);
            assert_eq!(element(&der), Some((0x04, der.len() - n, n)), "{n}");
        }
        assert_eq!(length(127), [127]);
        assert_eq!(length(128), [0x81, 128]);
        assert_eq!(length(300), [0x82, 1, 44]);
    }

    #[test]
    fn truncated_input_is_rejected() {
        let der = tlv(SEQUENCE, &tlv(0x04, b"abc"));
        assert!(children(&der).is_some());
        assert!(children(&der[..der.len() - 1]).is_none());
        assert!(element(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
    }
}
