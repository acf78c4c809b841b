//! The annotated function: what shape it has, where the code that runs on
//! each call is, and what that code evaluates to.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{Block, Expr, ExprAsync, GenericArgument, ItemFn, PathArguments, ReturnType, Stmt, Type};

/// Where the code that runs on each call lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Body {
    /// A plain `fn`: the block itself.
    Sync,
    /// An `async fn`: the block, run from the first poll.
    AsyncFn,
    /// A fn whose last expression is an async block, bare (a fn returning
    /// `impl Future`, as in traits) or as `Box::pin(async ..)` (what
    /// `#[async_trait]` makes): the call really happens inside that block.
    /// `index` is the statement holding it.
    Future { index: usize },
}

impl Body {
    pub(crate) fn is_async(self) -> bool {
        self != Body::Sync
    }
}

pub(crate) fn parse(tokens: TokenStream, macro_name: &str) -> syn::Result<ItemFn> {
    let item: ItemFn = match syn::parse2(tokens.clone()) {
        Ok(item) => item,
        Err(err) => {
            // A trait method without a default body parses as a trait item.
            if let Ok(decl) = syn::parse2::<syn::TraitItemFn>(tokens) {
                if decl.default.is_none() {
                    return Err(syn::Error::new_spanned(
                        &decl.sig,
                        format!(
                            "#[{macro_name}] needs a function body; put it on the method in the impl, not on the trait's declaration"
                        ),
                    ));
                }
            }
            return Err(syn::Error::new(
                err.span(),
                format!("#[{macro_name}] can only be used on a function: {err}"),
            ));
        }
    };
    if let Some(constness) = &item.sig.constness {
        return Err(syn::Error::new_spanned(
            constness,
            format!(
                "#[{macro_name}] cannot be used on a `const fn`: recording a call needs run-time code; remove `const` or the attribute"
            ),
        ));
    }
    Ok(item)
}

pub(crate) fn body(item: &ItemFn) -> Body {
    if item.sig.asyncness.is_some() {
        return Body::AsyncFn;
    }
    let Some(index) = item.block.stmts.len().checked_sub(1) else {
        return Body::Sync;
    };
    match &item.block.stmts[index] {
        Stmt::Expr(expr, None) if future_block(expr).is_some() => Body::Future { index },
        _ => Body::Sync,
    }
}

/// `async { .. }` or `Box::pin(async { .. })`.
fn future_block(expr: &Expr) -> Option<&ExprAsync> {
    match expr {
        Expr::Async(a) => Some(a),
        Expr::Call(call) if is_box_pin(&call.func) && call.args.len() == 1 => {
            match call.args.first() {
                Some(Expr::Async(a)) => Some(a),
                _ => None,
            }
        }
        _ => None,
    }
}

fn is_box_pin(func: &Expr) -> bool {
    let Expr::Path(path) = func else { return false };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    segments.ends_with(&["Box".into(), "pin".into()])
}

/// The async block of a [`Body::Future`] function, to rewrite in place.
pub(crate) fn future_block_mut(block: &mut Block, index: usize) -> Option<&mut ExprAsync> {
    match &mut block.stmts[index] {
        Stmt::Expr(Expr::Async(a), None) => Some(a),
        Stmt::Expr(Expr::Call(call), None) => match call.args.first_mut() {
            Some(Expr::Async(a)) => Some(a),
            _ => None,
        },
        _ => None,
    }
}

/// What one call evaluates to, as the expansion can write it.
pub(crate) struct Output {
    /// The type, with `impl Trait` parts written `_` so it can stand in an
    /// expression (`_` altogether where it cannot be found).
    pub(crate) ty: TokenStream,
    /// `-> !`: the call never returns.
    pub(crate) never: bool,
    /// The declared type as written, for spans.
    pub(crate) declared: Option<Type>,
}

pub(crate) fn output(item: &ItemFn, body: Body) -> Output {
    let declared = match &item.sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some((**ty).clone()),
    };
    let value = match (body, &declared) {
        (_, None) => return unit(),
        (Body::Future { .. }, Some(ty)) => future_output(ty).cloned(),
        (_, Some(ty)) => Some(ty.clone()),
    };
    match value {
        None => Output {
            ty: quote!(_),
            never: false,
            declared,
        },
        Some(Type::Never(_)) => Output {
            ty: quote!(::core::convert::Infallible),
            never: true,
            declared,
        },
        Some(mut ty) => {
            ImplTraitEraser.visit_type_mut(&mut ty);
            Output {
                ty: quote!(#ty),
                never: false,
                declared,
            }
        }
    }
}

fn unit() -> Output {
    Output {
        ty: quote!(()),
        never: false,
        declared: None,
    }
}

/// `Output = T` in `impl Future<Output = T>` or
/// `Pin<Box<dyn Future<Output = T> + Send>>`.
fn future_output(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Paren(p) => future_output(&p.elem),
        Type::Group(g) => future_output(&g.elem),
        Type::ImplTrait(t) => bounds_output(t.bounds.iter()),
        Type::TraitObject(t) => bounds_output(t.bounds.iter()),
        Type::Path(p) => {
            let last = p.path.segments.last()?;
            let PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            args.args.iter().find_map(|arg| match arg {
                GenericArgument::Type(t) => future_output(t),
                _ => None,
            })
        }
        _ => None,
    }
}

fn bounds_output<'a>(
    mut bounds: impl Iterator<Item = &'a syn::TypeParamBound>,
) -> Option<&'a Type> {
    bounds.find_map(|bound| {
        let syn::TypeParamBound::Trait(t) = bound else {
            return None;
        };
        let last = t.path.segments.last()?;
        if last.ident != "Future" {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(a) if a.ident == "Output" => Some(&a.ty),
            _ => None,
        })
    })
}

/// Writes the `impl Trait` parts of a type as `_`, so the rest of the type
/// can still guide inference in an expression.
struct ImplTraitEraser;

impl VisitMut for ImplTraitEraser {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(t) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](syn::spanned::Spanned::span(t)),
            });
            return;
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}

/// The function's name as a label shows it (`r#type` is `type`).
pub(crate) fn function_name(item: &ItemFn) -> String {
    let name = item.sig.ident.to_string();
    name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
}

/// The `#[track_caller]` attribute, if the function has one.
pub(crate) fn track_caller(item: &ItemFn) -> Option<&syn::Attribute> {
    item.attrs
        .iter()
        .find(|a| a.path().is_ident("track_caller"))
}

/// The first `return` or `?` that leaves the function from its own body
/// (not from a closure, async block or nested item inside it).
pub(crate) fn early_exit(block: &Block) -> Option<Span> {
    struct Finder(Option<Span>);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_expr(&mut self, expr: &'ast Expr) {
            if self.0.is_some() {
                return;
            }
            match expr {
                Expr::Return(r) => self.0 = Some(syn::spanned::Spanned::span(r)),
                Expr::Try(t) => self.0 = Some(t.question_token.span),
                Expr::Closure(_) | Expr::Async(_) => {}
                _ => syn::visit::visit_expr(self, expr),
            }
        }
        fn visit_item(&mut self, _: &'ast syn::Item) {}
    }
    let mut finder = Finder(None);
    finder.visit_block(block);
    finder.0
}
