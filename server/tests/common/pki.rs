//! Certificate authorities and server certificates made at test time (rcgen), written to files
//! as a server and a client read them.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};

/// A certificate authority that signs server certificates.
pub struct TestCa {
    pub name: String,
    /// Its certificate, PEM.
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "MONTI tests");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        TestCa {
            name: name.to_owned(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate CA signed by this one, as public CAs issue server certificates (the
    /// server then serves its certificate and the intermediate's: a "fullchain" file).
    pub fn intermediate(&self, name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        TestCa {
            name: name.to_owned(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// An existing CA from its certificate and key (PEM), such as one installed in the
    /// machine's trust store by the test script.
    pub fn load(cert: &Path, key: &Path) -> TestCa {
        let pem = std::fs::read_to_string(cert).expect("CA certificate");
        let key = KeyPair::from_pem(&std::fs::read_to_string(key).expect("CA key")).expect("key");
        let issuer = Issuer::from_ca_cert_pem(&pem, key).expect("issuer");
        TestCa {
            name: cert.display().to_string(),
            pem,
            issuer,
        }
    }

    /// A server certificate for `names` (DNS names or addresses), valid today.
    pub fn server_cert(&self, names: &[&str]) -> ServerCert {
        self.server_cert_valid(names, (2024, 1, 1), (2099, 1, 1))
    }

    /// A server certificate for `names`, valid between the two dates (year, month, day).
    pub fn server_cert_valid(
        &self,
        names: &[&str],
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> ServerCert {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "MONTI test server");
        params.not_before = date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the CA certificate into `dir`, for a client's `--ca-file`.
    pub fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, &self.pem).expect("write CA");
        path
    }
}

/// A server's certificate and key, PEM.
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl ServerCert {
    /// Writes `cert.pem` and `key.pem` into `dir` (replacing them), returning both paths.
    pub fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        // Written beside and renamed, as deployment tools replace certificates.
        let tmp_cert = dir.join("cert.pem.new");
        let tmp_key = dir.join("key.pem.new");
        std::fs::write(&tmp_cert, &self.cert_pem).expect("write cert");
        std::fs::write(&tmp_key, &self.key_pem).expect("write key");
        std::fs::rename(&tmp_key, &key).expect("rename key");
        std::fs::rename(&tmp_cert, &cert).expect("rename cert");
        (cert, key)
    }
}
