//! Compiles proto/fangpin/v1 with protox, so a fresh machine needs no `protoc`.

use std::path::PathBuf;

const PROTOS: [&str; 14] = [
    "fangpin/v1/common.proto",
    "fangpin/v1/policy.proto",
    "fangpin/v1/enrollment.proto",
    "fangpin/v1/claim.proto",
    "fangpin/v1/survey.proto",
    "fangpin/v1/publicity.proto",
    "fangpin/v1/payout.proto",
    "fangpin/v1/ledger.proto",
    "fangpin/v1/screening.proto",
    "fangpin/v1/service_info.proto",
    "fangpin/v1/follow_up.proto",
    "fangpin/v1/deadlines.proto",
    "fangpin/v1/evidence.proto",
    "fangpin/v1/audit.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(proto).display());
    }
    let fds = protox::compile(PROTOS, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // compile_fds takes descriptors that are already built, so it does not
    // write the set for reflection itself; we do.
    let encoded = prost::Message::encode_to_vec(&fds);
    std::fs::write(out.join("fangpin_descriptor.bin"), &encoded)?;
    // serde for every message in the canonical proto-JSON mapping
    // (lowerCamelCase names, enum names as strings; unknown fields refused).
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .out_dir(&out)
        .build(&[".fangpin.v1"])?;
    // Feed chunks are handed to the parser thread as they are: `Bytes`
    // avoids a copy of every megabyte.
    tonic_prost_build::configure()
        .bytes(".fangpin.v1.ImportFeedRequest.data")
        .bytes(".fangpin.v1.UploadEvidenceRequest.data")
        .bytes(".fangpin.v1.ImportRosterRequest.data")
        .bytes(".fangpin.v1.DownloadEvidenceResponse.data")
        .compile_fds(fds)?;
    Ok(())
}
