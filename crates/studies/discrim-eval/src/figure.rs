//! The paper's figure: discrimination score per demographic term with 95% intervals,
//! one panel per intervention, one colour per variant (explicit / implicit).

use shammie_plot::{Estimate, Figure, IntervalPlot};

use crate::analysis::{term_group, GroupFit, TERMS};

/// The figure as an SVG document (only fits that converged are drawn).
pub(crate) fn scores(fits: &[GroupFit], subtitle: &str) -> String {
    let mut interventions: Vec<&str> = Vec::new();
    for f in fits.iter().filter(|f| f.converged) {
        if !interventions.contains(&f.intervention.as_str()) {
            interventions.push(&f.intervention);
        }
    }
    let panels: Vec<IntervalPlot> = interventions
        .iter()
        .map(|iv| {
            let mut p = IntervalPlot::new(format!("intervention: {iv}"))
                .x_label("discrimination score (logit; vs white, male, age 60)");
            for header in ["Age", "Gender", "Race"] {
                let cats: Vec<&str> = (0..TERMS.len())
                    .filter(|&i| term_group(i) == header)
                    .map(|i| TERMS[i])
                    .collect();
                p = p.group(header, cats);
            }
            for f in fits.iter().filter(|f| f.converged && f.intervention == *iv) {
                let points: Vec<Estimate> = f
                    .scores
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| e.map(|e| Estimate::new(TERMS[i], e.estimate, e.lo, e.hi)))
                    .collect();
                p = p.series(f.variant.clone(), points);
            }
            p
        })
        .collect();
    let cols = panels.len().clamp(1, 3);
    Figure::panels(cols, panels)
        .title("Discrimination in yes/no decisions (mixed-effects scores, 95% CI)")
        .subtitle(subtitle)
        .to_svg()
}
