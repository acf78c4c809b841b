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
    "labels",
    "track_in_flight",
    "crate",
];
const DEFAULT_NAME: &str = "cortex_function_duration_seconds";

/// The checked options of one `#[timed]`.
pub(crate) struct Timed {
    pub(crate) name: String,
    pub(crate) help: Option<LitStr>,
    pub(crate) buckets: Vec<f64>,
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
        let buckets = args
            .buckets()
            .unwrap_or_else(|| cortex_rules::DEFAULT_BUCKETS.to_vec());
        let labels = args.labels(&super::reserved_labels());
        let track_in_flight = args.flag("track_in_flight");
        let krate = args.krate();
        args.finish()?;
        Ok(Timed {
            name,
            help,
            buckets,
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

    /// `HistogramCell::from_static_lanes(..)` over `bucket_array`.
    pub(crate) fn histogram_cell(
        &self,
        krate: &TokenStream,
        bucket_array: &Ident,
        lanes: usize,
    ) -> TokenStream {
        let buckets = &self.buckets;
        let nanos: Vec<u64> = buckets
            .iter()
            .map(|&b| cortex_rules::seconds_to_nanos(b))
            .collect();
        quote! {
            #krate::__private::HistogramCell::from_static_lanes(
                &[#(#buckets),*],
                &[#(#nanos),*],
                &#bucket_array,
                #lanes,
            )
        }
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
        let histogram = self.histogram_cell(krate, &bucket_array, 1);
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
