//! `#[timed]`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Ident, LitStr};

use super::nest::{Ctx, Inner};
use super::{fn_info, hidden, registration};
use crate::args::{self, Args};

const KEYS: &[&str] = &[
    "name",
    "help",
    "buckets",
    "native",
    "labels",
    "track_in_flight",
    "crate",
];
const NATIVE_KEYS: &[&str] = &["factor", "zero_threshold", "max_buckets"];
const DEFAULT_NAME: &str = "cortex_function_duration_seconds";

/// The checked options of one `#[timed]`.
pub(crate) struct Timed {
    pub(crate) name: String,
    pub(crate) help: Option<LitStr>,
    /// Classic bounds (empty for a native-only histogram).
    pub(crate) buckets: Vec<f64>,
    /// Native buckets: schema, zero threshold, maximum bucket count.
    pub(crate) native: Option<(i8, f64, u32)>,
    pub(crate) labels: Vec<(String, LitStr)>,
    pub(crate) track_in_flight: bool,
    pub(crate) krate: TokenStream,
    pub(crate) span: Span,
}

impl Timed {
    pub(crate) fn parse(attr: TokenStream, span: Span) -> syn::Result<Self> {
        let mut args = Args::parse(attr, "timed", KEYS)?;
        let name = args
            .string("name")
            .and_then(|lit| {
                let checked = args::metric_name(&lit, "_seconds");
                args.errors.ok(checked)
            })
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        let help = args.string("help");
        let given = args.buckets();
        let native = native(&mut args);
        // `native` alone keeps native buckets only; with `buckets`, both.
        let buckets = match (given, &native) {
            (Some(b), _) => b,
            (None, Some(_)) => Vec::new(),
            (None, None) => cortex_rules::DEFAULT_BUCKETS.to_vec(),
        };
        let labels = args.labels(&super::reserved_labels());
        let track_in_flight = args.flag("track_in_flight");
        let krate = args.krate();
        args.finish()?;
        Ok(Timed {
            name,
            help,
            buckets,
            native,
            labels,
            track_in_flight,
            krate,
            span,
        })
    }

    pub(crate) fn info(&self, ctx: &Ctx) -> TokenStream {
        fn_info(
            &self.krate,
            &self.name,
            &self.help,
            &ctx.function,
            &self.labels,
            &ctx.scope,
            ctx.objective.as_ref(),
        )
    }

    /// `HistogramCell::from_static_parts(..)` over `bucket_array`, and the
    /// static of its native buckets (named after `bucket_array`), if any.
    pub(crate) fn histogram_cell(
        &self,
        krate: &TokenStream,
        bucket_array: &Ident,
        lanes: usize,
    ) -> (TokenStream, TokenStream) {
        let buckets = &self.buckets;
        let nanos: Vec<u64> = buckets
            .iter()
            .map(|&b| cortex_rules::seconds_to_nanos(b))
            .collect();
        let (native_static, native) = match self.native {
            Some((schema, zero_threshold, max_buckets)) => {
                let name = hidden(&format!("{bucket_array}_NATIVE"));
                (
                    quote! {
                        static #name: #krate::__private::NativeCell = #krate::__private::NativeCell::new(
                            #krate::metrics::NativeOptions::__checked(#schema, #zero_threshold, #max_buckets),
                        );
                    },
                    quote!(::core::option::Option::Some(&#name)),
                )
            }
            None => (TokenStream::new(), quote!(::core::option::Option::None)),
        };
        let cell = quote! {
            #krate::__private::HistogramCell::from_static_parts(
                &[#(#buckets),*],
                &[#(#nanos),*],
                &#bucket_array,
                #lanes,
                #native,
            )
        };
        (native_static, cell)
    }

    /// Times each call of the layers below it, however it ends. Timing needs
    /// no return value, so the code below is left as it is.
    pub(crate) fn layer(&self, ctx: &Ctx, index: usize, inner: Inner) -> (TokenStream, Inner) {
        let krate = &self.krate;
        let info = self.info(ctx);
        let slots = self.buckets.len() + 1;
        let bucket_array = hidden(&format!("__CORTEX_TIMED_BUCKETS_{index}"));
        let site = hidden(&format!("__CORTEX_TIMED_{index}"));
        let entry = hidden(&format!("__CORTEX_TIMED_ENTRY_{index}"));
        let (native, histogram) = self.histogram_cell(krate, &bucket_array, 1);
        let track = self.track_in_flight;
        let registration = registration(
            krate,
            quote!(#krate::__private::SITES),
            &entry,
            quote!(#krate::__private::Site),
            quote!(#krate::__private::Site::Timed(&#site)),
        );
        let statics = quote! {
            static #bucket_array: [#krate::__private::AtomicU64; #slots] =
                [const { #krate::__private::AtomicU64::new(0) }; #slots];
            #native
            static #site: #krate::__private::TimedSite =
                #krate::__private::TimedSite::new(#info, #histogram, #track);
            #registration
        };
        // The guard lives as long as the code below: dropped on return, `?`,
        // panic or (async) cancellation, it times the call in every case.
        let guard = hidden(&format!("__cortex_timed_{index}"));
        let inner = inner.expr();
        let expr = quote! {{
            let #guard = #krate::__private::TimedCall::start(&#site);
            #inner
        }};
        (statics, Inner::Expr(expr))
    }
}

/// `native` (the defaults) or `native(factor = 1.05, zero_threshold = 1e-9,
/// max_buckets = 100)`, checked by the runtime's rules.
fn native(args: &mut Args) -> Option<(i8, f64, u32)> {
    let arg = args.take("native")?;
    let defaults = (
        3i8,
        cortex_rules::native::DEFAULT_ZERO_THRESHOLD,
        cortex_rules::native::DEFAULT_MAX_BUCKETS,
    );
    let tokens = match &arg.value {
        crate::args::Value::Flag => return Some(defaults),
        crate::args::Value::List(tokens, _) => tokens.clone(),
        crate::args::Value::Expr(e) => {
            args.error(syn::Error::new_spanned(
                e,
                "`native` is a flag or a list: write `native` or `native(factor = 1.05)`",
            ));
            return None;
        }
    };
    let mut inner = match Args::parse(tokens, "timed(native(..))", NATIVE_KEYS) {
        Ok(inner) => inner,
        Err(e) => {
            args.error(e);
            return None;
        }
    };
    let (mut schema, mut zero_threshold, mut max_buckets) = defaults;
    if let Some((factor, tokens)) = inner.float("factor") {
        match cortex_rules::native::schema_for_factor(factor) {
            Ok(s) => schema = s,
            Err(rule) => inner.error(syn::Error::new_spanned(tokens, format!("`factor`: {rule}"))),
        }
    }
    if let Some((threshold, tokens)) = inner.float("zero_threshold") {
        match cortex_rules::native::check_zero_threshold(threshold) {
            Ok(()) => zero_threshold = threshold,
            Err(rule) => inner.error(syn::Error::new_spanned(
                tokens,
                format!("`zero_threshold`: {rule}"),
            )),
        }
    }
    if let Some((max, span)) = inner.int::<u32>("max_buckets") {
        match cortex_rules::native::check_max_buckets(max) {
            Ok(()) => max_buckets = max,
            Err(rule) => inner.error(syn::Error::new(span, format!("`max_buckets`: {rule}"))),
        }
    }
    if let Err(e) = inner.finish() {
        args.error(e);
        return None;
    }
    Some((schema, zero_threshold, max_buckets))
}
