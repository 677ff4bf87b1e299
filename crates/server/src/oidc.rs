//! Optional OIDC: bearer JWTs verified against a configured issuer and a JWKS file (signature,
//! `iss`, `aud`, `exp`), the groups claim mapped to a team and role — seed 004 gave teams their
//! rights from directory groups; here a mapping `GROUP=TEAM:ROLE` says which.

use atoll_inventory::{Principal, Role};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use std::path::Path;

/// An OpenID Connect issuer whose ID tokens the server accepts.
#[derive(Debug, Clone)]
pub struct Oidc {
    /// The `iss` a token must carry.
    pub issuer: String,
    /// The `aud` a token must carry, if any.
    pub audience: Option<String>,
    /// The issuer's signing keys.
    pub jwks: JwkSet,
    /// The claim holding the user's groups. Default `groups`.
    pub groups_claim: String,
    /// Group → (team, role), in order: the first of the user's groups that maps wins.
    pub groups: Vec<(String, String, Role)>,
}

impl Oidc {
    /// `mappings` are `GROUP=TEAM:ROLE`.
    pub fn load(
        issuer: &str,
        audience: Option<&str>,
        jwks: &Path,
        groups_claim: &str,
        mappings: &[String],
    ) -> Result<Oidc, String> {
        let text = std::fs::read_to_string(jwks)
            .map_err(|e| format!("{}: cannot read the JWKS: {e}", jwks.display()))?;
        let jwks: JwkSet = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a JWKS document: {e}", jwks.display()))?;
        let mut groups = Vec::new();
        for m in mappings {
            let (g, rest) = m
                .split_once('=')
                .ok_or_else(|| format!("group mapping `{m}`: expected GROUP=TEAM:ROLE"))?;
            let (team, role) = rest
                .split_once(':')
                .ok_or_else(|| format!("group mapping `{m}`: expected GROUP=TEAM:ROLE"))?;
            groups.push((g.to_string(), team.to_string(), role.parse()?));
        }
        Ok(Oidc {
            issuer: issuer.into(),
            audience: audience.map(str::to_string),
            jwks,
            groups_claim: groups_claim.into(),
            groups,
        })
    }

    /// Verifies `token` and maps it to a principal, or says why not.
    pub fn principal(&self, token: &str) -> Result<Principal, String> {
        let header = decode_header(token).map_err(|e| format!("not a valid JWT: {e}"))?;
        let kid = header
            .kid
            .ok_or("the JWT has no `kid`: cannot pick a key from the JWKS")?;
        let jwk = self
            .jwks
            .find(&kid)
            .ok_or_else(|| format!("no key `{kid}` in the configured JWKS"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key `{kid}`: {e}"))?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.issuer]);
        match &self.audience {
            Some(a) => v.set_audience(&[a]),
            None => v.validate_aud = false,
        }
        let data = decode::<Value>(token, &key, &v).map_err(|e| format!("JWT rejected: {e}"))?;
        let claims = data.claims;
        let name = ["preferred_username", "email", "sub"]
            .iter()
            .find_map(|k| claims[*k].as_str())
            .unwrap_or("unknown")
            .to_string();
        let user_groups: Vec<&str> = claims[&self.groups_claim]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        self.groups
            .iter()
            .find(|(g, _, _)| user_groups.contains(&g.as_str()))
            .map(|(_, team, role)| Principal {
                name: name.clone(),
                team: team.clone(),
                role: *role,
            })
            .ok_or_else(|| {
                format!(
                    "{name}'s groups ({}) map to no team",
                    user_groups.join(", ")
                )
            })
    }
}
