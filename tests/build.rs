//! Generates the tonic service of `proto/shop.proto` for the gRPC tests,
//! and the messages of `proto/prometheus_metrics.proto` (the Prometheus
//! protobuf exposition) for the exposition tests, with a protoc binary from the `protoc-bin-vendored` crate (no system
//! package needed).

fn main() {
    let protoc =
        protoc_bin_vendored::protoc_bin_path().expect("a vendored protoc for this platform");
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto/shop.proto");
    println!("cargo:rerun-if-changed=proto/prometheus_metrics.proto");
    tonic_build::configure()
        .build_transport(false)
        .compile_protos(
            &["proto/shop.proto", "proto/prometheus_metrics.proto"],
            &["proto"],
        )
        .expect("the test protos compile");
}
