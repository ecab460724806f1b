//! A county's policy as the store keeps it (JSON) and reads it back for
//! every claim. Checked, beyond "no panic":
//! - a body that parses round-trips: written and read again, it is the same
//!   policy;
//! - validation is deterministic and never panics, whatever the figures.
#![no_main]

use fangpin_domain::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(policy) = serde_json::from_slice::<Policy>(data) else {
        return;
    };
    let verdict = policy.validate();
    assert_eq!(verdict, policy.validate(), "deterministic");
    let body = serde_json::to_string(&policy).expect("a policy serializes");
    let again: Policy = serde_json::from_str(&body).expect("its own JSON parses");
    assert_eq!(again, policy, "round trip");
    assert_eq!(again.validate(), verdict);
});
