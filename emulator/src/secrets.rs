//! The secrets the template has AWS generate (`AWS::SecretsManager::Secret`), made here.

/// A random secret in the shape the template's `GenerateSecretString` asks for:
/// letters and digits.
pub fn generate_secret(length: usize) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), length)
}
