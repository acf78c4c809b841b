//! `#[timed]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Block, Ident, ItemFn, LitStr, Stmt};

use super::{fn_info, hidden, registration, take_sibling, with_error};
use crate::args::{self, Args};
use crate::item::{self, Body};

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
}

impl Timed {
    pub(crate) fn parse(attr: TokenStream) -> syn::Result<Self> {
        let mut args = Args::parse(attr, "timed", KEYS)?;
        let name = match args.string("name")? {
            Some(lit) => args::metric_name(&lit, "_seconds")?,
            None => DEFAULT_NAME.to_owned(),
        };
        let help = args.string("help")?;
        let buckets = args
            .buckets()?
            .unwrap_or_else(|| cortex_rules::DEFAULT_BUCKETS.to_vec());
        let labels = args.labels(&super::reserved_labels())?;
        let track_in_flight = args.flag("track_in_flight")?;
        let krate = args.krate()?;
        Ok(Timed {
            name,
            help,
            buckets,
            labels,
            track_in_flight,
            krate,
        })
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
}

pub(crate) fn expand(attr: TokenStream, tokens: TokenStream) -> TokenStream {
    match try_expand(attr, tokens.clone()) {
        Ok(out) => out,
        Err(err) => with_error(tokens, &err),
    }
}

fn try_expand(attr: TokenStream, tokens: TokenStream) -> syn::Result<TokenStream> {
    let timed = Timed::parse(attr)?;
    let mut item = item::parse(tokens, "timed")?;
    super::refuse_repeat(&item, "timed")?;
    // `#[cortex::timed] #[cortex::counted]`: one fused expansion.
    if let Some(counted_args) = take_sibling(&mut item, "counted") {
        super::refuse_repeat(&item, "counted")?;
        let counted = super::counted::Counted::parse(counted_args)?;
        return super::fused::generate(&counted, &timed, item);
    }
    generate(&timed, item)
}

fn generate(timed: &Timed, mut item: ItemFn) -> syn::Result<TokenStream> {
    let krate = &timed.krate;
    let function = item::function_name(&item);
    let info = fn_info(krate, &timed.name, &timed.help, &function, &timed.labels);
    let slots = timed.buckets.len() + 1;
    let bucket_array = hidden("__CORTEX_TIMED_BUCKETS");
    let site = hidden("__CORTEX_TIMED_SITE");
    let entry = hidden("__CORTEX_TIMED_ENTRY");
    let histogram = timed.histogram_cell(krate, &bucket_array, 1);
    let track = timed.track_in_flight;
    let registration = registration(
        krate,
        &entry,
        quote!(#krate::__private::Site::Timed(&#site)),
    );
    let statics = quote! {
        static #bucket_array: [#krate::__private::AtomicU64; #slots] =
            [const { #krate::__private::AtomicU64::new(0) }; #slots];
        static #site: #krate::__private::TimedSite =
            #krate::__private::TimedSite::new(#info, #histogram, #track);
        #registration
    };
    let call = hidden("__cortex_timed");
    // The guard lives as long as the body: dropped on return, `?`, panic or
    // (async) cancellation, and times the call in every case. Timing needs
    // no return value, so the body is left as it is.
    let start = quote!(let #call = #krate::__private::TimedCall::start(&#site););

    match item::body_kind(&item) {
        Body::Sync | Body::Async => {
            prepend(&mut item.block, vec![verbatim(statics), verbatim(start)]);
        }
        Body::AsyncTrait(index) => {
            let inner = item::async_trait_block_mut(&mut item.block, index).ok_or_else(|| {
                syn::Error::new_spanned(&item.sig, "unexpected #[async_trait] body")
            })?;
            prepend(inner, vec![verbatim(start)]);
            prepend(&mut item.block, vec![verbatim(statics)]);
        }
    }
    Ok(quote!(#item))
}

fn verbatim(tokens: TokenStream) -> Stmt {
    Stmt::Item(syn::Item::Verbatim(tokens))
}

fn prepend(block: &mut Block, stmts: Vec<Stmt>) {
    block.stmts.splice(0..0, stmts);
}
