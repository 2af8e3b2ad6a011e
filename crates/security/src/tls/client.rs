//! The client side: a rustls `ClientConfig` for tests, the inter-broker client and the CLI.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{crypto_provider, pem, server::root_store};
use crate::error::{Result, SecurityError};

/// A client config trusting the CA certificates of `truststore_pem`, presenting
/// `identity = Some((certificate_chain_pem, private_key_pem))` when the server asks for a
/// certificate, TLS 1.2 and 1.3. `verify_hostname: false` is Kafka's
/// `ssl.endpoint.identification.algorithm=` (empty): the server's chain is still verified
/// against the truststore, only the name it was reached by is not checked against it.
pub fn client_config(
    truststore_pem: &str,
    identity: Option<(&str, &str)>,
    verify_hostname: bool,
) -> Result<Arc<ClientConfig>> {
    let provider = crypto_provider();
    let source_name = "the client truststore";
    let roots = Arc::new(root_store(&pem::certificates(truststore_pem, source_name)?, source_name)?);
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|err| config_error("protocol versions", "the client defaults", &err))?;
    let builder = if verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier { roots, provider }))
    };
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((chain_pem, key_pem)) => {
            let chain = pem::certificates(chain_pem, "the client certificate chain")?;
            let key = pem::private_key(key_pem, "the client private key")?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|err| config_error("client certificate and key", "the client identity", &err))?
        }
    };
    Ok(Arc::new(config))
}

fn config_error(what: &'static str, source_name: &str, err: &rustls::Error) -> SecurityError {
    SecurityError::TlsConfig { what, source_name: source_name.to_owned(), reason: err.to_string() }
}

/// Verifies the server's chain against the truststore (validity, signatures, revocation
/// none) but not the server name: Kafka's empty `ssl.endpoint.identification.algorithm`.
#[derive(Debug)]
struct ChainOnlyVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let certificate = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &certificate,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
