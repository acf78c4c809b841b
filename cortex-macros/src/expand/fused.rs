//! `#[counted]` and `#[timed]` next to each other, expanded together: a
//! histogram with one lane per outcome records both metrics with a single
//! bucket increment per call.

use proc_macro2::TokenStream;
use quote::quote;

use super::counted::{observe_result, Counted};
use super::nest::{Ctx, Inner};
use super::timed::Timed;
use super::{hidden, registration};

/// One lane per `Outcome` (ok, error, panic, cancelled).
const LANES: usize = 4;

pub(crate) fn layer(
    counted: &Counted,
    timed: &Timed,
    ctx: &Ctx,
    index: usize,
    inner: Inner,
) -> (TokenStream, Inner) {
    let krate = &counted.krate;
    let counted_info = counted.info(ctx);
    let timed_info = timed.info(ctx);
    let bucket_array = hidden(&format!("__CORTEX_FUSED_BUCKETS_{index}"));
    let site = hidden(&format!("__CORTEX_FUSED_{index}"));
    let entry = hidden(&format!("__CORTEX_FUSED_ENTRY_{index}"));
    let slots = LANES * (timed.buckets.len() + 1);
    let (native, histogram) = timed.histogram_cell(krate, &bucket_array, LANES);
    let track = timed.track_in_flight;
    let registration = registration(
        krate,
        quote!(#krate::__private::SITES),
        &entry,
        quote!(#krate::__private::Site),
        quote!(#krate::__private::Site::Fused(&#site)),
    );
    let statics = quote! {
        static #bucket_array: [#krate::__private::AtomicU64; #slots] =
            [const { #krate::__private::AtomicU64::new(0) }; #slots];
        #native
        static #site: #krate::__private::FusedSite = #krate::__private::FusedSite::new(
            #counted_info,
            #krate::__private::TimedSite::new(#timed_info, #histogram, #track),
        );
        #registration
    };
    let call_type = quote!(#krate::__private::FusedCall);
    let start = quote!(#call_type::start(&#site));
    (
        statics,
        observe_result(krate, ctx.carried(index), index, (call_type, start), inner),
    )
}
