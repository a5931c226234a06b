//! What a running dev tenant shares between its handle ([`DevTenant`](super::tenant::DevTenant))
//! and its server: the directory, keys, faults, and which issuers it mints.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Mutex, MutexGuard, RwLock};

use super::faults::Faults;
use super::keys::KeyRing;
use super::registry::{DevUser, ManagedIdentityExpiry, Registry};
use crate::authority::{Authority, Cloud, Tenant};
use crate::validation::jwt::SigningAlgorithm;

/// The state of a running dev tenant.
pub(crate) struct Shared {
    pub(crate) tenant_id: String,
    pub(crate) domain: String,
    pub(crate) extra_tenants: Vec<String>,
    pub(crate) api_client_id: String,
    pub(crate) client_app_id: String,
    pub(crate) users: Vec<DevUser>,
    pub(crate) keys: RwLock<KeyRing>,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) identity_header: String,
    pub(crate) mi_expiry: Mutex<ManagedIdentityExpiry>,
    /// Request counters and injected faults.
    pub(crate) faults: Faults,
    pub(crate) base_url: String,
    pub(crate) issuers: DevIssuers,
    /// The authority whose issuer forms it mints ([`DevIssuers::Own`], `Cloud` or `ExternalId`).
    pub(crate) issuer_authority: Authority,
    /// With [`DevIssuers::B2c`]: the B2C tenant name and user flow.
    pub(crate) b2c: Option<(String, String)>,
    pub(crate) served: AtomicUsize,
    /// The algorithm tokens are signed with (RS256 unless configured).
    pub(crate) signing_algorithm: SigningAlgorithm,
    /// Set by [`DevTenant::stop`]: connections still open get no answer.
    pub(crate) stopped: AtomicBool,
    /// Group memberships: user object id (lower case) → group object ids.
    pub(crate) groups: Mutex<HashMap<String, Vec<String>>>,
    /// The emulated Kubernetes cluster (service accounts and TokenReview).
    pub(crate) kubernetes: super::cluster::Cluster,
}

/// Which real authority's issuer forms the dev tenant announces and mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DevIssuers {
    /// Its own: `{base url}/{tenant}/v2.0` and `{base url}/{tenant}/` (the default).
    Own,
    /// A Microsoft cloud's: for China `https://login.partner.microsoftonline.cn/{tenant}/v2.0`
    /// and `https://sts.chinacloudapi.cn/{tenant}/`, although documents are served from loopback.
    Cloud(Cloud),
    /// Entra External ID's: `https://{tenant}.ciamlogin.com/{tenant}/v2.0` (v1.0 tokens, which
    /// External ID does not document, get the public cloud's `https://sts.windows.net/{tenant}/`).
    ExternalId,
    /// Azure AD B2C's (see [`DevTenantBuilder::emulate_b2c`](crate::dev::DevTenantBuilder::emulate_b2c)): documents at
    /// `{base url}/{tenant}.onmicrosoft.com/{user flow}/v2.0/.well-known/openid-configuration`,
    /// the issuer `https://{tenant}.b2clogin.com/{tenant id}/v2.0/`, and the user flow in each
    /// token's `tfp` claim.
    B2c,
}

impl DevIssuers {
    /// The authority whose issuers these forms are (B2C's issuer has its own formatter), for
    /// the tenant `tenant_id` served at `base_url`.
    ///
    /// # Panics
    ///
    /// Never for the dev tenant's own loopback base URL.
    pub(crate) fn authority(self, base_url: &str, tenant_id: &str) -> Authority {
        let tenant = Tenant::Id(tenant_id.to_owned());
        match self {
            Self::Own | Self::B2c => {
                Authority::entra_at_host(base_url, tenant, "base_url").expect("the dev tenant's base URL is loopback")
            }
            Self::Cloud(cloud) => Authority::entra(cloud, tenant),
            Self::ExternalId => Authority::external_id("azaddev", tenant).expect("one DNS label, one tenant"),
        }
    }
}

impl Shared {
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The v2.0 issuer for a tenant part (a tenant id or `{tenantid}`).
    pub(crate) fn issuer_v2(&self, part: &str) -> String {
        match self.issuers {
            DevIssuers::B2c => self.b2c_issuer(part),
            _ => self.issuer_authority.expected_v2_issuer(part).unwrap_or_default(),
        }
    }

    /// Azure AD B2C's one issuer form: `https://{tenant}.b2clogin.com/{tenant id}/v2.0/`.
    fn b2c_issuer(&self, part: &str) -> String {
        let name = self.b2c.as_ref().map_or("azaddev", |(n, _)| n.as_str());
        Authority::b2c_issuer(name, part)
    }

    /// The v1.0 issuer for a tenant part.
    pub(crate) fn issuer_v1(&self, part: &str) -> String {
        let issuer = match self.issuers {
            DevIssuers::Own => self.issuer_authority.expected_custom_v1_issuer(part),
            DevIssuers::Cloud(_) => self.issuer_authority.known_v1_issuer(part),
            // External ID documents no v1.0 tokens: the public cloud's v1.0 issuer.
            DevIssuers::ExternalId => {
                Authority::entra(Cloud::Public, Tenant::Id(self.tenant_id.clone())).known_v1_issuer(part)
            }
            DevIssuers::B2c => return self.b2c_issuer(part),
        };
        issuer.unwrap_or_default()
    }

    pub(crate) fn user_groups(&self, user_oid: &str) -> Vec<String> {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user_oid.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn is_known_tenant(&self, t: &str) -> bool {
        t.eq_ignore_ascii_case(&self.tenant_id)
            || t.eq_ignore_ascii_case(&self.domain)
            || self.extra_tenants.iter().any(|x| x.eq_ignore_ascii_case(t))
    }
}
