//! `#[counted]` and `#[timed]` on the same function, expanded together: a
//! histogram with one lane per outcome records both metrics with a single
//! bucket increment per call.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use super::counted::Counted;
use super::timed::Timed;
use super::{fn_info, hidden, registration, wrap_observing_result};
use crate::item;

/// One lane per `Outcome` (ok, error, panic, cancelled).
const LANES: usize = 4;

pub(crate) fn generate(
    counted: &Counted,
    timed: &Timed,
    mut item: ItemFn,
) -> syn::Result<TokenStream> {
    let krate = &counted.krate;
    let function = item::function_name(&item);
    let counted_info = fn_info(
        krate,
        &counted.name,
        &counted.help,
        &function,
        &counted.labels,
    );
    let timed_info = fn_info(krate, &timed.name, &timed.help, &function, &timed.labels);
    let bucket_array = hidden("__CORTEX_FUSED_BUCKETS");
    let site = hidden("__CORTEX_FUSED_SITE");
    let entry = hidden("__CORTEX_FUSED_ENTRY");
    let slots = LANES * (timed.buckets.len() + 1);
    let histogram = timed.histogram_cell(krate, &bucket_array, LANES);
    let track = timed.track_in_flight;
    let registration = registration(
        krate,
        &entry,
        quote!(#krate::__private::Site::Fused(&#site)),
    );
    let statics = quote! {
        static #bucket_array: [#krate::__private::AtomicU64; #slots] =
            [const { #krate::__private::AtomicU64::new(0) }; #slots];
        static #site: #krate::__private::FusedSite = #krate::__private::FusedSite::new(
            #counted_info,
            #krate::__private::TimedSite::new(#timed_info, #histogram, #track),
        );
        #registration
    };
    let start = quote!(#krate::__private::FusedCall::start(&#site));
    wrap_observing_result(&mut item, krate, statics, start)?;
    Ok(quote!(#item))
}
