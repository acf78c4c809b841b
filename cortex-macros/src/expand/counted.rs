//! `#[counted]`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::LitStr;

use super::nest::{Ctx, Inner};
use super::{fn_info, hidden, registration};
use crate::args::{self, Args};

const KEYS: &[&str] = &["name", "help", "labels", "crate"];
const DEFAULT_NAME: &str = "cortex_function_calls_total";

/// The checked options of one `#[counted]`.
pub(crate) struct Counted {
    pub(crate) name: String,
    pub(crate) help: Option<LitStr>,
    pub(crate) labels: Vec<(String, LitStr)>,
    pub(crate) krate: TokenStream,
    pub(crate) span: Span,
}

impl Counted {
    pub(crate) fn parse(attr: TokenStream, span: Span) -> syn::Result<Self> {
        let mut args = Args::parse(attr, "counted", KEYS)?;
        let name = args
            .string("name")
            .and_then(|lit| {
                let checked = args::metric_name(&lit, "_total");
                args.errors.ok(checked)
            })
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        let help = args.string("help");
        let labels = args.labels(&super::reserved_labels());
        let krate = args.krate();
        args.finish()?;
        Ok(Counted {
            name,
            help,
            labels,
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

    /// Counts each call the layers below it make, by how it ended.
    pub(crate) fn layer(&self, ctx: &Ctx, index: usize, inner: Inner) -> (TokenStream, Inner) {
        let krate = &self.krate;
        let info = self.info(ctx);
        let site = hidden(&format!("__CORTEX_COUNTED_{index}"));
        let entry = hidden(&format!("__CORTEX_COUNTED_ENTRY_{index}"));
        let registration = registration(
            krate,
            quote!(#krate::__private::SITES),
            &entry,
            quote!(#krate::__private::Site),
            quote!(#krate::__private::Site::Counted(&#site)),
        );
        let statics = quote! {
            static #site: #krate::__private::CountedSite = #krate::__private::CountedSite::new(#info);
            #registration
        };
        let call_type = quote!(#krate::__private::CountedCall);
        let start = quote!(#call_type::start(&#site));
        (
            statics,
            observe_result(krate, ctx.carried(index), index, (call_type, start), inner),
        )
    }
}

/// `let call = start; let out = inner; CallType::finish(call, outcome of
/// out); out` (the call type named, so no trait a user imports can take
/// the method):
/// a guard dropped unfinished means the call unwound or was cancelled.
pub(crate) fn observe_result(
    krate: &TokenStream,
    ty: TokenStream,
    index: usize,
    (call_type, start): (TokenStream, TokenStream),
    inner: Inner,
) -> Inner {
    let call = hidden(&format!("__cortex_call_{index}"));
    let out = hidden(&format!("__cortex_out_{index}"));
    let inner = inner.expr();
    Inner::Expr(quote! {{
        #[allow(unused_imports)]
        use #krate::__private::{IsResult as _, NotResult as _};
        let #call = #start;
        #[allow(unreachable_code)]
        let #out: #ty = #inner;
        #[allow(unreachable_code)]
        #call_type::finish(#call, (&#out).__cortex_outcome());
        #out
    }})
}
