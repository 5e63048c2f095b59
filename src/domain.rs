//! Domains. Until the dom0 builder exists only the idle domain runs.

/// The name of the domain whose context Oxen is in, for reports.
pub fn current_name() -> &'static str {
    "idle (no guest has run yet)"
}
