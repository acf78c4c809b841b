const CHECKOUT: cortex::slo::Objective = cortex::slo::Objective::new("checkout").success_rate(100.0);

#[cortex::objective(objective = CHECKOUT)]
#[cortex::counted]
fn charge() {}

fn main() {}
