const CHECKOUT: cortex::slo::Objective = cortex::slo::Objective::new("checkout").success_rate(99.9);

#[cortex::objective(objective = CHECKOUT, success_rate = 99.0)]
#[cortex::counted]
fn charge() {}

fn main() {}
