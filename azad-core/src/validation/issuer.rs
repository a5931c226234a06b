//! The issuer and tenant decision, in one place: the issuers discovery announced (exact or
//! `{tenantid}` templates), the tenant the configuration names, the allow-list of a
//! multi-tenant API, `consumers` refused under `organizations`, and the key's own issuer
//! (steps 7 and 8 of the validator), with the matching diagnosis for logs.
//!
//! Sources: Microsoft identity platform, "Access tokens" (`iss`, `tid`) and "Validate tokens"
//! (multi-tenant issuer validation: the `{tenantid}` template filled with the token's `tid`,
//! and the key's `issuer` in the JWKS).

use crate::authority::{Authority, CONSUMERS_TENANT_ID, TENANT_TEMPLATE, Tenant, is_guid};
use crate::error::ValidationError;

/// The issuers a token of this authority may carry, as announced by discovery.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Issuers {
    /// Issuer templates or exact issuers (`{tenantid}` replaced by the token's `tid`).
    pub(crate) accepted: Vec<String>,
    /// The v2.0 issuer (template), used to check the JWKS key `issuer` of v1.0 tokens.
    pub(crate) v2: Option<String>,
    /// The tenant id of a single-tenant Entra authority (learned from discovery): a token's
    /// `tid` must equal it.
    pub(crate) tenant_id: Option<String>,
}

impl Issuers {
    /// `true` if any accepted issuer needs the token's `tid`.
    pub(crate) fn is_templated(&self) -> bool {
        self.accepted.iter().any(|i| i.contains(TENANT_TEMPLATE))
    }

    /// Matches `iss` against the accepted issuers; a templated issuer matches only with
    /// `tid` substituted.
    pub(crate) fn matches(&self, iss: &str, tid: Option<&str>) -> bool {
        self.accepted.iter().any(|candidate| template_matches(candidate, tid, iss))
    }
}

/// `true` if `template` with `{tenantid}` replaced by `tid` equals `value` (no allocation).
/// A template without the placeholder must equal `value`; with it, `tid` is required.
pub(crate) fn template_matches(template: &str, tid: Option<&str>, value: &str) -> bool {
    match template.find(TENANT_TEMPLATE) {
        None => template == value,
        Some(at) => tid.is_some_and(|tid| {
            let (pre, post) = (&template[..at], &template[at + TENANT_TEMPLATE.len()..]);
            value.len() == pre.len() + tid.len() + post.len()
                && value.starts_with(pre)
                && value.ends_with(post)
                && &value[pre.len()..pre.len() + tid.len()] == tid
        }),
    }
}

/// Why a token's issuer or tenant was refused, as far as the configuration alone can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IssuerDiagnosis {
    /// The token comes from a tenant that is not the configured (or an allowed) one.
    AnotherTenant,
    /// The token's issuer belongs to another authority (cloud, B2C policy or provider).
    AnotherAuthority,
}

/// The tenant rules of one authority: built with the validation policy.
#[derive(Debug, Clone)]
pub(crate) struct IssuerPolicy {
    pub(crate) authority: Authority,
    /// The tenant id the configuration names (a tenant id, `consumers`, or a tenant id given
    /// with a metadata URL): every accepted token's `tid` must be it, whatever the key source.
    pub(crate) required_tenant: Option<String>,
    /// For `common`/`organizations`: the tenant ids allowed.
    pub(crate) allowed_tenants: Option<Vec<String>>,
}

impl IssuerPolicy {
    /// Steps 7 and 8 of validation: the token's issuer is one `issuers` announces (with its
    /// `tid` in a template's place), its tenant is accepted, and the signing key's own issuer,
    /// where the JWKS publishes one, is the token's (or, for v1.0 tokens whose keys carry
    /// v2.0 issuers, the v2.0 issuer of the same tenant).
    pub(crate) fn check(
        &self,
        issuers: &Issuers,
        iss: &str,
        tid: Option<&str>,
        key_issuer: Option<&str>,
    ) -> Result<(), ValidationError> {
        if iss.is_empty() {
            return Err(ValidationError::MissingClaim("iss"));
        }
        // A templated issuer names no tenant without a GUID `tid` to fill it with.
        if issuers.is_templated() && !tid.is_some_and(is_guid) {
            return Err(ValidationError::InvalidIssuer);
        }
        // Entra ID writes its tenant id in every token, as a lower-case GUID.
        if self.authority.is_entra() {
            let tid = tid.ok_or(ValidationError::MissingClaim("tid"))?;
            if !is_canonical_tenant_id(tid) {
                return Err(ValidationError::InvalidTenantId);
            }
        }
        if !issuers.matches(iss, tid) {
            return Err(ValidationError::InvalidIssuer);
        }
        self.tenant_check(issuers, tid)?;
        if let Some(key_issuer) = key_issuer {
            // Both sides may be templates; compare them with the token's tid substituted.
            let same_as_v2 = || {
                issuers.v2.as_deref().is_some_and(|v2| {
                    (key_issuer == v2 && tid.is_some())
                        || template_matches(key_issuer, tid, v2)
                        || template_matches(v2, tid, key_issuer)
                })
            };
            if !template_matches(key_issuer, tid, iss) && !same_as_v2() {
                return Err(ValidationError::KeyIssuerMismatch);
            }
        }
        Ok(())
    }

    /// The tenant rules, whatever the key source: a configuration that names a tenant accepts
    /// only that tenant's tokens (`InvalidIssuer` otherwise), a single tenant learned from
    /// discovery likewise, and a multi-tenant one applies `organizations` and the allow-list
    /// (`TenantNotAllowed`).
    pub(crate) fn tenant_check(&self, issuers: &Issuers, tid: Option<&str>) -> Result<(), ValidationError> {
        // The tenant the configuration names: the token must say it is from that tenant.
        if !self.is_required_tenant(tid) {
            return Err(ValidationError::InvalidIssuer);
        }
        // A single-tenant authority's tokens carry its own tenant id.
        if let (Some(expected), Some(tid)) = (&issuers.tenant_id, tid)
            && !expected.eq_ignore_ascii_case(tid)
        {
            return Err(ValidationError::InvalidIssuer);
        }
        if issuers.is_templated() {
            let tid = tid.unwrap_or_default();
            if matches!(self.authority.tenant(), Some(Tenant::Organizations))
                && tid.eq_ignore_ascii_case(CONSUMERS_TENANT_ID)
            {
                return Err(ValidationError::TenantNotAllowed);
            }
            if let Some(allowed) = &self.allowed_tenants
                && !allowed.iter().any(|t| t.eq_ignore_ascii_case(tid))
            {
                return Err(ValidationError::TenantNotAllowed);
            }
        }
        Ok(())
    }

    /// `true` unless the configuration names a tenant and `tid` is not it (needs no keys).
    pub(crate) fn is_required_tenant(&self, tid: Option<&str>) -> bool {
        self.required_tenant.as_ref().is_none_or(|required| tid.is_some_and(|t| t.eq_ignore_ascii_case(required)))
    }

    /// The likely cause of an `InvalidIssuer` or `TenantNotAllowed` refusal of a token from
    /// tenant `tid`, for server-side logs.
    pub(crate) fn diagnose(&self, tid: &str, error: &ValidationError) -> IssuerDiagnosis {
        let ours = match self.authority.tenant() {
            Some(Tenant::Id(id)) => Some(id.eq_ignore_ascii_case(tid)),
            _ => self.allowed_tenants.as_ref().map(|list| list.iter().any(|t| t.eq_ignore_ascii_case(tid))),
        };
        match ours {
            Some(false) => IssuerDiagnosis::AnotherTenant,
            _ if matches!(error, ValidationError::TenantNotAllowed) => IssuerDiagnosis::AnotherTenant,
            _ => IssuerDiagnosis::AnotherAuthority,
        }
    }
}

/// Entra ID's canonical tenant id: a GUID in lower case (`72f988bf-86f1-41af-91ab-2d7cd011db47`).
fn is_canonical_tenant_id(tid: &str) -> bool {
    is_guid(tid) && !tid.bytes().any(|b| b.is_ascii_uppercase())
}
