//! Span limits as the OpenTelemetry SDK has them: attribute and event
//! counts, attribute value length, the `OTEL_*_LIMIT` variables, and the
//! dropped counts in the exported OTLP.

use cortex::trace::{
    encode_otlp_json, ConfigError, InMemoryExporter, KeyValue, SpanData, SpanLimits, Tracer, Value,
};
use cortex_tests::{otlp_validate, vars, Verdict};

fn one_span(limits: Option<SpanLimits>, fill: impl FnOnce(&mut cortex::trace::Span)) -> SpanData {
    let exporter = InMemoryExporter::default();
    let mut builder = Tracer::builder().exporter(exporter.clone());
    if let Some(l) = limits {
        builder = builder.span_limits(l);
    }
    let tracer = builder.build();
    let mut span = tracer.start("limited");
    fill(&mut span);
    span.end();
    assert!(tracer.force_flush());
    exporter.spans().remove(0)
}

#[test]
fn past_128_attributes_new_keys_are_dropped_and_counted() {
    let span = one_span(None, |s| {
        for i in 0..200 {
            s.set_attribute(format!("key.{i}"), i);
        }
        // A key it has already: replaced, nothing dropped.
        s.set_attribute("key.0", "again");
    });
    assert_eq!(span.attributes.len(), 128);
    assert_eq!(span.dropped_attributes_count, 72);
    assert_eq!(span.attribute("key.0"), Some(&Value::Str("again".into())));
    assert_eq!(span.attribute("key.127"), Some(&Value::I64(127)));
    assert!(span.attribute("key.128").is_none());
}

#[test]
fn past_128_events_and_128_attributes_per_event_are_dropped_and_counted() {
    let span = one_span(None, |s| {
        let many: Vec<KeyValue> = (0..200)
            .map(|i| KeyValue::new(format!("a{i}"), i))
            .collect();
        s.add_event("crowded", many);
        for i in 1..130 {
            s.add_event(format!("event {i}"), Vec::new());
        }
    });
    assert_eq!(span.events.len(), 128);
    assert_eq!(span.dropped_events_count, 2);
    assert_eq!(span.events[0].attributes.len(), 128);
    assert_eq!(span.events[0].dropped_attributes_count, 72);
    assert_eq!(span.events[127].name, "event 127");
}

#[test]
fn long_text_values_are_cut_at_a_character_boundary() {
    let limits = SpanLimits::default().max_attribute_value_length(2);
    let span = one_span(Some(limits), |s| {
        s.set_attribute("word", "héllo"); // h, then é takes bytes 1 and 2
        s.set_attribute("short", "ok");
        s.set_attribute("number", 123_456);
        s.add_event("note", vec![KeyValue::new("text", "abcdef")]);
    });
    assert_eq!(span.attribute("word"), Some(&Value::Str("h".into())));
    assert_eq!(span.attribute("short"), Some(&Value::Str("ok".into())));
    assert_eq!(span.attribute("number"), Some(&Value::I64(123_456)));
    assert_eq!(span.events[0].attributes[0].value, Value::Str("ab".into()));
}

#[test]
fn the_variables_set_the_limits_and_a_bad_one_is_named() {
    let limits = SpanLimits::from_vars(vars(&[
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3"),
        ("OTEL_SPAN_EVENT_COUNT_LIMIT", "1"),
        ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "2"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "5"),
    ]))
    .unwrap();
    assert_eq!(
        limits,
        SpanLimits::default()
            .max_attributes(3)
            .max_events(1)
            .max_event_attributes(2)
            .max_attribute_value_length(5)
    );
    // The span-specific variable wins over the general one.
    let limits = SpanLimits::from_vars(vars(&[
        ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3"),
        ("OTEL_ATTRIBUTE_COUNT_LIMIT", "9"),
    ]))
    .unwrap();
    assert_eq!(limits, SpanLimits::default().max_attributes(3));
    match SpanLimits::from_vars(vars(&[("OTEL_SPAN_EVENT_COUNT_LIMIT", "lots")])) {
        Err(ConfigError::BadVariable {
            variable, value, ..
        }) => {
            assert_eq!(variable, "OTEL_SPAN_EVENT_COUNT_LIMIT");
            assert_eq!(value, "lots");
        }
        other => panic!("a bad count is an error, got {other:?}"),
    }
    // Through the builder: from_env reports it, code wins over variables.
    assert!(Tracer::builder()
        .from_vars(vars(&[("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "-1")]))
        .is_err());
    let tracer = Tracer::builder()
        .span_limits(SpanLimits::default().max_attributes(7))
        .from_vars(vars(&[("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3")]))
        .unwrap()
        .build();
    assert_eq!(
        tracer.span_limits(),
        SpanLimits::default().max_attributes(7)
    );
}

#[test]
fn dropped_counts_are_exported_in_valid_otlp() {
    let limits = SpanLimits::default()
        .max_attributes(1)
        .max_events(1)
        .max_event_attributes(1);
    let span = one_span(Some(limits), |s| {
        s.set_attribute("a", 1);
        s.set_attribute("b", 2);
        s.set_attribute("c", 3);
        s.add_event("first", vec![KeyValue::new("x", 1), KeyValue::new("y", 2)]);
        s.add_event("second", Vec::new());
    });
    let body = encode_otlp_json("limits", &[span]);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let span = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["droppedAttributesCount"], 2);
    assert_eq!(span["droppedEventsCount"], 1);
    assert_eq!(span["events"][0]["droppedAttributesCount"], 1);
    match otlp_validate(&[body]) {
        Verdict::Accepted | Verdict::Unavailable => {}
        Verdict::Refused(why) => panic!("otlp_validate refused the body: {why}"),
    }
}
