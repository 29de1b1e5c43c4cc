//! The usual JWT attack playbook (RFC 8725 and the well-known attacks on JWT
//! libraries), as tokens to present to a verifier: every one must be refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use settings::Secret;
use tokens::{ACCESS_TOKEN_TYPE, Claims, Ed25519Key, Tokens, jwk};

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `good` (an EdDSA token) under a random well-formed key id nobody published: what a
/// flood of garbage looks like to a verifier, which must refuse it without a read each.
pub fn under_made_up_key_id(good: &str) -> String {
    use rand::RngCore;
    let (header, rest) = good.split_once('.').unwrap();
    let mut header_json: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    header_json["kid"] = json!(URL_SAFE_NO_PAD.encode(random));
    format!("{}.{rest}", b64(&header_json))
}

/// Tokens a verifier must refuse, each with what it tries, built from `good` (a valid
/// token `signer` issued) and `signer` itself (which signs the claim-level attacks, so
/// that only the claim is wrong). `refresh_token` is a real refresh token of the same
/// session.
pub fn jwt_attacks(signer: &Tokens, good: &str, refresh_token: &str) -> Vec<(String, String)> {
    let parts: Vec<&str> = good.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    let header_json: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let with_header = |edit: &dyn Fn(&mut Value)| {
        let mut h = header_json.clone();
        edit(&mut h);
        format!("{}.{payload}.{signature}", b64(&h))
    };
    let mut attacks: Vec<(String, String)> = Vec::new();
    let mut add = |what: &str, token: String| attacks.push((what.to_owned(), token));

    for alg in ["none", "None", "NONE", "nOnE"] {
        for sig in ["", signature] {
            let h = json!({"alg": alg, "typ": ACCESS_TOKEN_TYPE});
            add(
                &format!("alg {alg}"),
                format!("{}.{payload}.{sig}", b64(&h)),
            );
        }
    }
    // Key confusion: HS256 MAC'd with what a verifier may hold as the public key.
    if let Some(public) = signer.signing_key() {
        let raw = URL_SAFE_NO_PAD.decode(&public.x).unwrap();
        let jwk_text = jwk(public).to_string();
        for secret in [raw.as_slice(), public.x.as_bytes(), jwk_text.as_bytes()] {
            let h = Header {
                typ: Some(ACCESS_TOKEN_TYPE.into()),
                kid: Some(public.kid.clone()),
                ..Header::new(Algorithm::HS256)
            };
            let key = EncodingKey::from_secret(secret).unwrap();
            add(
                "HS256 MAC'd with the public key",
                jsonwebtoken::encode(&h, &claims, &key).unwrap(),
            );
        }
    }
    for kid in [
        "A".repeat(43),
        "../../../../etc/passwd".to_owned(),
        "x' OR '1'='1".to_owned(),
        "KEY#anything".to_owned(),
        "\u{0000}".to_owned(),
        "k".repeat(300),
    ] {
        add(
            &format!("kid {kid:.24}"),
            with_header(&|h| h["kid"] = kid.clone().into()),
        );
    }
    // An attacker's own key, announced in the header as jku, x5u or an embedded jwk.
    let attacker = Tokens::ed25519(
        Ed25519Key::random(),
        None,
        std::time::Duration::from_secs(60),
    )
    .with_issuer(signer.issuer(), signer.audience());
    let attacker_key = attacker.signing_key().unwrap().clone();
    for (field, value) in [
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("jwk", jwk(&attacker_key)),
    ] {
        let forged = attacker.sign(&claims).unwrap();
        let forged_parts: Vec<&str> = forged.split('.').collect();
        let mut h: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(forged_parts[0]).unwrap()).unwrap();
        h[field] = value;
        // The signature no longer covers this header; the attacker's signed one follows.
        add(
            &format!("{field} header"),
            format!("{}.{}.{}", b64(&h), forged_parts[1], forged_parts[2]),
        );
        add(
            &format!("{field}: signed by the attacker's key"),
            forged.clone(),
        );
    }
    for typ in ["JWT", "refresh+jwt", "", "AT+JWT"] {
        add(
            &format!("typ {typ:?}"),
            with_header(&|h| h["typ"] = typ.into()),
        );
    }
    add(
        "no typ",
        with_header(&|h| {
            h.as_object_mut().unwrap().remove("typ");
        }),
    );
    add("truncated signature", good[..good.len() - 5].to_owned());
    add("empty signature", format!("{header}.{payload}."));
    add("no signature part", format!("{header}.{payload}"));
    add(
        "oversized header",
        with_header(&|h| h["pad"] = "x".repeat(2000).into()),
    );
    add(
        "a refresh token as an access token",
        refresh_token.to_owned(),
    );
    for (what, claims) in [
        (
            "wrong iss",
            Claims {
                iss: "https://evil.example".into(),
                ..claims.clone()
            },
        ),
        (
            "wrong aud",
            Claims {
                aud: "another-api".into(),
                ..claims.clone()
            },
        ),
        (
            "expired",
            Claims {
                exp: claims.iat - 1,
                ..claims.clone()
            },
        ),
        (
            "issued in the future",
            Claims {
                iat: claims.iat + tokens::CLOCK_LEEWAY_SECS + 600,
                exp: claims.exp + tokens::CLOCK_LEEWAY_SECS + 600,
                ..claims.clone()
            },
        ),
    ] {
        add(what, signer.sign(&claims).unwrap());
    }
    let mut not_yet = serde_json::to_value(&claims).unwrap();
    not_yet["nbf"] = json!(claims.iat + tokens::CLOCK_LEEWAY_SECS + 600);
    add("not valid yet (nbf)", signer.sign(&not_yet).unwrap());
    add(
        "another Ed25519 key",
        attacker
            .issue(claims.user_id(), &claims.username, claims.session_id())
            .unwrap()
            .token,
    );
    let other_secret = Secret::new("another-secret-of-at-least-32-bytes!!".into()).unwrap();
    let hs256 = Tokens::new(&other_secret, std::time::Duration::from_secs(60))
        .unwrap()
        .with_issuer(signer.issuer(), signer.audience());
    add(
        "HS256 with another secret",
        hs256
            .issue(claims.user_id(), &claims.username, claims.session_id())
            .unwrap()
            .token,
    );
    attacks
}
