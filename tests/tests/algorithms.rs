//! Signature algorithms beyond RS256, by configuration: for each of RS384, RS512, PS256, PS384
//! and PS512, a dev tenant signs every token it issues with it; a configuration allowing it
//! accepts them, the default (RS256 only) refuses them, and a key whose `alg` contradicts the
//! token's is refused.

use azad_core::ClientCredential;
use azad_core::SigningAlgorithm;
use azad_core::{TokenClient, TokenValidator, ValidationError};
use azad_tests::DevTenant;

const ALGORITHMS: [SigningAlgorithm; 5] = [
    SigningAlgorithm::RS384,
    SigningAlgorithm::RS512,
    SigningAlgorithm::PS256,
    SigningAlgorithm::PS384,
    SigningAlgorithm::PS512,
];

fn header_alg(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap();
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["alg"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_algorithm_is_accepted_when_configured_and_only_then() {
    for alg in ALGORITHMS {
        let dev = DevTenant::builder().signing_algorithm(alg).start().await.unwrap();
        // A token the tenant's token endpoint issues (client credentials), and one it mints.
        let client = TokenClient::new(&dev.config(), ClientCredential::secret(dev.api_client_secret()));
        let issued = client.acquire_app_token(&["api://azad-downstream/.default"]).await.unwrap();
        assert_eq!(header_alg(issued.secret()), alg.as_str());
        let minted = dev.token().build();
        assert_eq!(header_alg(&minted), alg.as_str());

        let allowing = TokenValidator::new(dev.config_builder().algorithms([alg]).build().unwrap());
        let claims = allowing.validate(&minted).await.unwrap();
        assert_eq!(claims.tenant_id(), Some(dev.tenant_id()), "{alg}");
        let downstream = dev.config_builder().client_id(dev.downstream_client_id()).algorithms([alg]).build().unwrap();
        TokenValidator::new(downstream).validate(issued.secret()).await.unwrap();

        // RS256 stays the only default.
        let default = TokenValidator::new(dev.config());
        assert_eq!(default.validate(&minted).await.unwrap_err(), ValidationError::AlgorithmNotAllowed, "{alg}");
        // The token's alg must match the key's: the same key, announced for `alg`, never
        // verifies a token that claims another algorithm, even an allowed one.
        let other = if alg == SigningAlgorithm::PS256 { SigningAlgorithm::RS512 } else { SigningAlgorithm::PS256 };
        let both = TokenValidator::new(dev.config_builder().algorithms([alg, other]).build().unwrap());
        let mismatched = dev.token().algorithm(other).build();
        assert_eq!(both.validate(&mismatched).await.unwrap_err(), ValidationError::AlgorithmNotAllowed, "{alg}");
        both.validate(&minted).await.unwrap();
    }
}

#[tokio::test]
async fn none_and_hmac_are_never_accepted_whatever_the_configuration() {
    let dev = DevTenant::builder().signing_algorithm(SigningAlgorithm::PS256).start().await.unwrap();
    let all = TokenValidator::new(
        dev.config_builder().algorithms([SigningAlgorithm::RS256, SigningAlgorithm::PS256]).build().unwrap(),
    );
    for forged in ["none", "HS256", "HS512"] {
        let token = dev.token().alg_header(forged).build();
        assert_eq!(all.validate(&token).await.unwrap_err(), ValidationError::AlgorithmNotAllowed, "{forged}");
    }
}
