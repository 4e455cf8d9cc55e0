use super::*;
use crate::output::PrometheusOutput;
use alumet::metrics::MetricRegistry;
use alumet::pipeline::ErrorKind;
use alumet::prelude::*;
use std::sync::OnceLock;

#[test]
fn a_server_that_ends_on_its_own_makes_the_next_write_fail_fatally() {
    let state = Arc::new(Mutex::new(State::new(Duration::from_secs(300), 10)));
    let page = Arc::new(Page {
        state: Arc::clone(&state),
        control: OnceLock::new(),
        prefix: String::new(),
        add_timestamps: false,
    });
    let limits = Limits {
        max_connections: 4,
        read_timeout: Duration::from_secs(1),
    };
    let address = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut exporter = Exporter::start(address, page, Arc::clone(&state), limits)
        .expect("listening on a free loopback port");
    let mut registry = MetricRegistry::new();
    let metric = registry
        .register::<u64>("m", Unit::Unity, "m")
        .expect("registered");
    let ctx = OutputContext::new(Arc::new(registry));
    let mut output = PrometheusOutput::new(Arc::clone(&state), "", &Default::default());
    let mut buffer = MeasurementBuffer::new();
    buffer.push(MeasurementPoint::new(
        Timestamp::now(),
        metric,
        Resource::LocalMachine,
        ResourceConsumer::LocalMachine,
        1,
    ));
    assert!(output.write(&buffer, &ctx).is_ok());
    // The server's task ends without being told to stop (its stop channel is gone).
    drop(exporter.stop.take());
    if let Some(thread) = exporter.thread.take() {
        thread.join().expect("the server thread returns");
    }
    let Err(e) = output.write(&buffer, &ctx) else {
        panic!("a write after the endpoint stopped succeeded");
    };
    assert_eq!(e.kind(), ErrorKind::Fatal);
    let said = format!("{:#}", e.error());
    assert!(said.contains("HTTP endpoint stopped"), "{said}");
}
