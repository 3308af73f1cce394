//! The two TOML configs: a model's `config.toml` and the server's config file, each parsed
//! and validated; what validates must give usable limits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use walkout::models::config::ModelConfig;
use walkout::serve::config::ServerConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(c) = ModelConfig::parse(text) {
        assert!(c.input.pixel_limit() > 0);
        assert!(c.input.multiple_of > 0);
    }
    if let Ok(mut c) = ServerConfig::parse(text) {
        // environment overrides are validated again
        let _ = c.apply_env(|v| (v == "WALKOUT_MAX_CAMERAS").then(|| "0".to_string()));
    }
});
