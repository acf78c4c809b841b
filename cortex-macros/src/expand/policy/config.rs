//! One typed configuration per policy: read from the attribute's keys,
//! checked by the rules in `cortex-rules` (the ones the runtime uses), and
//! rendered as the constant the site is built with.

use std::collections::HashMap;
use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Expr, ExprLit, Lit};

use crate::args::{Args, Value};
use crate::stack::Kind;
use cortex_rules::resilience::{
    Backoff, BulkheadConfig, CircuitBreakerConfig, ConfigError, JitterMode, OpenForBackoff,
    OpenHealth, RateLimiterConfig, RetryConfig, Window,
};

/// The keys each policy accepts (the lists a configuration file's keys
/// come from too).
pub(crate) fn keys(kind: Kind) -> &'static [&'static str] {
    use cortex_rules::config as keys;
    match kind {
        Kind::CircuitBreaker => keys::BREAKER_KEYS,
        Kind::Retry => keys::RETRY_KEYS,
        Kind::Bulkhead => keys::BULKHEAD_KEYS,
        Kind::Timeout => keys::TIMEOUT_KEYS,
        Kind::RateLimit => keys::RATE_LIMITER_KEYS,
        Kind::Counted | Kind::Timed | Kind::Traced | Kind::Objective => &[],
    }
}

/// A checked policy configuration.
pub(crate) enum Config {
    Breaker(CircuitBreakerConfig),
    Retry(RetryConfig),
    Bulkhead(BulkheadConfig),
    Timeout(Duration),
    RateLimit(RateLimiterConfig),
}

/// Where each key's value was written (its tokens), to point a rule's
/// error at it.
struct Spans {
    map: HashMap<&'static str, TokenStream>,
    default: Span,
}

impl Spans {
    fn new(default: Span) -> Self {
        Spans {
            map: HashMap::new(),
            default,
        }
    }

    fn note<T>(&mut self, key: &'static str, value: Option<(T, impl Place)>) -> Option<T> {
        let (v, place) = value?;
        self.map.insert(key, place.tokens());
        Some(v)
    }

    fn mark(&mut self, key: &'static str, span: Span) {
        self.map.insert(key, span.tokens());
    }

    /// Reports every rule `problems` lists, on the value that broke it (or,
    /// for a default value, on the key it was compared with).
    fn report(&self, args: &mut Args, problems: Vec<ConfigError>, related: &[(&str, &str)]) {
        for err in problems {
            let place = self.map.get(err.key).or_else(|| {
                related
                    .iter()
                    .find(|(k, _)| *k == err.key)
                    .and_then(|(_, other)| self.map.get(other))
            });
            args.error(match place {
                Some(tokens) => syn::Error::new_spanned(tokens, err.to_string()),
                None => syn::Error::new(self.default, err.to_string()),
            });
        }
    }
}

/// Where a value was written: one token's span, or the tokens of a whole
/// expression (`-0.5`), for an error that covers it.
trait Place {
    fn tokens(self) -> TokenStream;
}

impl Place for Span {
    fn tokens(self) -> TokenStream {
        quote::quote_spanned!(self=> value)
    }
}

impl Place for TokenStream {
    fn tokens(self) -> TokenStream {
        self
    }
}

/// The functions that classify a call's result.
#[derive(Default)]
pub(crate) struct Predicates {
    /// Breaker: errors that count as failures (default: all).
    pub(crate) record_if: Option<syn::Path>,
    /// Breaker: errors that count as neither (wins over `record_if`).
    pub(crate) ignore_if: Option<syn::Path>,
    /// Breaker: `Ok` values that count as failures.
    pub(crate) record_result: Option<syn::Path>,
    /// Retry: errors to retry (default: all but rejections).
    pub(crate) retry_if: Option<syn::Path>,
    /// Retry: `Ok` values to retry.
    pub(crate) retry_on_result: Option<syn::Path>,
}

impl Config {
    /// Reads the keys of `kind` (a timeout's duration is `after`), reporting
    /// mistakes through `args`; also gives the classifying functions.
    pub(crate) fn parse(kind: Kind, args: &mut Args, attr_span: Span) -> (Config, Predicates) {
        let mut spans = Spans::new(attr_span);
        let mut predicates = Predicates::default();
        match kind {
            Kind::Retry => {
                predicates.retry_if = args.path("retry_if");
                predicates.retry_on_result = args.path("retry_on_result");
                (Config::Retry(retry(args, &mut spans)), predicates)
            }
            Kind::Bulkhead => {
                let mut c = BulkheadConfig::default();
                if let Some(v) = spans.note("max_concurrent", args.int("max_concurrent")) {
                    c.max_concurrent = v;
                }
                if let Some(d) = spans.note("max_wait", args.duration("max_wait", true)) {
                    c.max_wait = d;
                }
                if let Some(fair) = args.boolean("fair") {
                    c.fair = fair;
                }
                spans.report(args, c.problems(), &[]);
                (Config::Bulkhead(c), predicates)
            }
            Kind::Timeout => {
                let after = match args.take("after") {
                    Some(arg) => match &arg.value {
                        Value::Expr(e) => {
                            let d = crate::args::duration_expr(e, "after", false);
                            args.errors.ok(d).map(|(d, _)| d)
                        }
                        _ => {
                            args.error(syn::Error::new(
                                arg.key.span(),
                                "#[timeout] needs a duration: `#[timeout(\"2s\")]`",
                            ));
                            None
                        }
                    },
                    // Bare: Resilience4j TimeLimiter's default.
                    None => Some(cortex_rules::resilience::DEFAULT_TIMEOUT),
                };
                (
                    Config::Timeout(after.unwrap_or(cortex_rules::resilience::DEFAULT_TIMEOUT)),
                    predicates,
                )
            }
            Kind::RateLimit => {
                let mut c = RateLimiterConfig::default();
                if let Some(v) = spans.note("permits", args.int("permits")) {
                    c.permits = v;
                }
                if let Some(d) = spans.note("period", args.duration("period", false)) {
                    c.period = d;
                }
                if let Some(d) = spans.note("max_wait", args.duration("max_wait", true)) {
                    c.max_wait = d;
                }
                spans.report(args, c.problems(), &[]);
                (Config::RateLimit(c), predicates)
            }
            _ => {
                predicates.record_if = args.path("record_if");
                predicates.ignore_if = args.path("ignore_if");
                predicates.record_result = args.path("record_result");
                (Config::Breaker(breaker(args, &mut spans)), predicates)
            }
        }
    }

    /// The runtime type of the instance.
    pub(crate) fn instance(&self, krate: &TokenStream) -> TokenStream {
        match self {
            Config::Breaker(_) => quote!(#krate::resilience::CircuitBreaker),
            Config::Retry(_) => quote!(#krate::resilience::Retry),
            Config::Bulkhead(_) => quote!(#krate::resilience::Bulkhead),
            Config::Timeout(_) => quote!(#krate::resilience::Timeout),
            Config::RateLimit(_) => quote!(#krate::resilience::RateLimiter),
        }
    }

    /// The variant of the runtime's site list.
    pub(crate) fn variant(&self) -> TokenStream {
        match self {
            Config::Breaker(_) => quote!(Breaker),
            Config::Retry(_) => quote!(Retry),
            Config::Bulkhead(_) => quote!(Bulkhead),
            Config::Timeout(_) => quote!(Timeout),
            Config::RateLimit(_) => quote!(RateLimit),
        }
    }

    /// The configuration as a constant expression.
    pub(crate) fn render(&self, krate: &TokenStream) -> TokenStream {
        match self {
            Config::Breaker(c) => {
                let window = match c.window {
                    Window::Count(n) => quote!(#krate::resilience::Window::Count(#n)),
                    Window::Time(d) => {
                        let d = duration(d);
                        quote!(#krate::resilience::Window::Time(#d))
                    }
                };
                let (fr, sr, mc, hc) = (
                    c.failure_rate,
                    c.slow_call_rate,
                    c.minimum_calls,
                    c.half_open_calls,
                );
                let threshold = option(c.slow_call_threshold.map(duration));
                let open_for = duration(c.open_for);
                let health = match c.health {
                    OpenHealth::Degraded => quote!(#krate::resilience::OpenHealth::Degraded),
                    OpenHealth::Down => quote!(#krate::resilience::OpenHealth::Down),
                };
                let automatic = c.automatic_half_open;
                let max_wait = option(c.max_wait_in_half_open.map(duration));
                let backoff = option(c.open_for_backoff.map(|b| {
                    let (m, max) = (b.multiplier, duration(b.max));
                    quote!(#krate::resilience::OpenForBackoff { multiplier: #m, max: #max })
                }));
                quote! {
                    #krate::resilience::CircuitBreakerConfig {
                        failure_rate: #fr,
                        slow_call_rate: #sr,
                        slow_call_threshold: #threshold,
                        minimum_calls: #mc,
                        window: #window,
                        open_for: #open_for,
                        half_open_calls: #hc,
                        health: #health,
                        automatic_half_open: #automatic,
                        max_wait_in_half_open: #max_wait,
                        open_for_backoff: #backoff,
                    }
                }
            }
            Config::Retry(c) => {
                let delay = duration(c.delay);
                let backoff = match c.backoff {
                    Backoff::Fixed => quote!(#krate::resilience::Backoff::Fixed),
                    Backoff::Exponential {
                        multiplier,
                        max_delay,
                    } => {
                        let md = duration(max_delay);
                        quote!(#krate::resilience::Backoff::Exponential { multiplier: #multiplier, max_delay: #md })
                    }
                };
                let (max, jitter) = (c.max, c.jitter);
                let budget = option(c.budget.map(|b| quote!(#b)));
                let mode = match c.jitter_mode {
                    JitterMode::Proportional => quote!(Proportional),
                    JitterMode::Full => quote!(Full),
                    JitterMode::Decorrelated => quote!(Decorrelated),
                };
                let max_elapsed = option(c.max_elapsed.map(duration));
                quote! {
                    #krate::resilience::RetryConfig {
                        max: #max,
                        delay: #delay,
                        backoff: #backoff,
                        jitter: #jitter,
                        jitter_mode: #krate::resilience::JitterMode::#mode,
                        budget: #budget,
                        max_elapsed: #max_elapsed,
                    }
                }
            }
            Config::Bulkhead(c) => {
                let m = c.max_concurrent;
                let w = duration(c.max_wait);
                let fair = c.fair;
                quote! {
                    #krate::resilience::BulkheadConfig { max_concurrent: #m, max_wait: #w, fair: #fair }
                }
            }
            Config::Timeout(d) => duration(*d),
            Config::RateLimit(c) => {
                let p = c.permits;
                let period = duration(c.period);
                let w = duration(c.max_wait);
                quote! {
                    #krate::resilience::RateLimiterConfig { permits: #p, period: #period, max_wait: #w }
                }
            }
        }
    }
}

fn breaker(args: &mut Args, spans: &mut Spans) -> CircuitBreakerConfig {
    let mut c = CircuitBreakerConfig::default();
    if let Some(v) = spans.note("failure_rate", args.int("failure_rate")) {
        c.failure_rate = v;
    }
    if let Some(v) = spans.note("slow_call_rate", args.int("slow_call_rate")) {
        c.slow_call_rate = v;
    }
    if let Some(d) = spans.note(
        "slow_call_threshold",
        args.duration("slow_call_threshold", false),
    ) {
        c.slow_call_threshold = Some(d);
    }
    if let Some(v) = spans.note("minimum_calls", args.int("minimum_calls")) {
        c.minimum_calls = v;
    }
    if let Some(arg) = args.take("window") {
        match &arg.value {
            Value::Expr(Expr::Lit(ExprLit {
                lit: Lit::Int(i), ..
            })) if i.suffix().is_empty() => match i.base10_parse::<u32>() {
                Ok(n) => {
                    spans.mark("window", i.span());
                    c.window = Window::Count(n);
                }
                Err(e) => args.error(e),
            },
            Value::Expr(Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            })) => {
                let d = crate::args::duration_lit(s, false);
                if let Some(d) = args.errors.ok(d) {
                    spans.mark("window", s.span());
                    c.window = Window::Time(d);
                }
            }
            Value::Expr(e) => args.error(syn::Error::new_spanned(
                e,
                "`window` is a number of calls (`window = 100`) or a duration (`window = \"60s\"`)",
            )),
            _ => args.error(syn::Error::new(
                arg.key.span(),
                "`window` expects a value: `window = 100`",
            )),
        }
    }
    if let Some(d) = spans.note("open_for", args.duration("open_for", false)) {
        c.open_for = d;
    }
    if let Some(v) = spans.note("half_open_calls", args.int("half_open_calls")) {
        c.half_open_calls = v;
    }
    if let Some(s) = args.string("health") {
        match s.value().as_str() {
            "degraded" => c.health = OpenHealth::Degraded,
            "down" => c.health = OpenHealth::Down,
            other => args.error(syn::Error::new(
                s.span(),
                format!(
                    "unknown health \"{other}\"; an open breaker reports \"degraded\" or \"down\""
                ),
            )),
        }
    }
    c.automatic_half_open = args.flag("automatic_half_open");
    if let Some(d) = spans.note(
        "max_wait_in_half_open",
        args.duration("max_wait_in_half_open", false),
    ) {
        c.max_wait_in_half_open = Some(d);
    }
    let multiplier = spans.note("open_for_multiplier", args.float("open_for_multiplier"));
    let max_open_for = spans.note("max_open_for", args.duration("max_open_for", false));
    if multiplier.is_some() || max_open_for.is_some() {
        c.open_for_backoff = Some(OpenForBackoff {
            multiplier: multiplier.unwrap_or(2.0),
            max: max_open_for.unwrap_or(Duration::from_secs(3600)),
        });
    }
    spans.report(args, c.problems(), cortex_rules::config::BREAKER_RELATED);
    c
}

fn retry(args: &mut Args, spans: &mut Spans) -> RetryConfig {
    let mut c = RetryConfig::default();
    if let Some(v) = spans.note("max", args.int("max")) {
        c.max = v;
    }
    if let Some(d) = spans.note("delay", args.duration("delay", false)) {
        c.delay = d;
    }
    let multiplier = spans.note("multiplier", args.float("multiplier"));
    let max_delay = spans.note("max_delay", args.duration("max_delay", false));
    if let Some(arg) = args.take("jitter") {
        match &arg.value {
            Value::Expr(Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            })) => match s.value().as_str() {
                "full" => c.jitter_mode = JitterMode::Full,
                "decorrelated" => c.jitter_mode = JitterMode::Decorrelated,
                other => args.error(syn::Error::new(
                    s.span(),
                    format!("unknown jitter \"{other}\"; write a share of the delay (`jitter = 0.2`), \"full\" or \"decorrelated\""),
                )),
            },
            Value::Expr(e) => match crate::args::number(e) {
                Some(v) => {
                    spans.map.insert("jitter", quote!(#e));
                    c.jitter = v;
                }
                None => args.error(syn::Error::new_spanned(
                    e,
                    "`jitter` is a share of the delay (`jitter = 0.2`), \"full\" or \"decorrelated\"",
                )),
            },
            _ => args.error(syn::Error::new(
                arg.key.span(),
                "`jitter` expects a value: `jitter = 0.2`",
            )),
        }
    }
    if let Some(d) = spans.note("max_elapsed", args.duration("max_elapsed", false)) {
        c.max_elapsed = Some(d);
    }
    if let Some(v) = spans.note("budget", args.float("budget")) {
        c.budget = Some(v);
    }
    if multiplier.is_some() || max_delay.is_some() {
        c.backoff = Backoff::Exponential {
            multiplier: multiplier.unwrap_or(2.0),
            max_delay: max_delay.unwrap_or(Duration::from_secs(3600)),
        };
    }
    spans.report(args, c.problems(), cortex_rules::config::RETRY_RELATED);
    c
}

fn duration(d: Duration) -> TokenStream {
    let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    quote!(::core::time::Duration::from_nanos(#n))
}

fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}
