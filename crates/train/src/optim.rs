//! AdamW (Loshchilov & Hutter; PyTorch's `torch.optim.AdamW` update) and the learning-rate
//! schedule (Hugging Face's linear warm-up followed by cosine or linear decay to zero).

use candle_core::{Tensor, Var};

use crate::TrainError;

/// AdamW's hyper-parameters (defaults: PyTorch's betas and eps; no weight decay, the usual
/// choice for LoRA).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 2e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// AdamW over a fixed list of `Var`s. Step `t` (from 1), with gradient `g` and learning
/// rate `lr`:
/// `p ← p − lr·wd·p` (decoupled decay), `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
/// `p ← p − lr · (m/(1−β1^t)) / (√(v/(1−β2^t)) + eps)`.
pub struct AdamW {
    pub cfg: AdamWConfig,
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: u64,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, cfg: AdamWConfig) -> Result<Self, TrainError> {
        if !(0.0..1.0).contains(&cfg.beta1) || !(0.0..1.0).contains(&cfg.beta2) {
            return Err(TrainError::Config(format!(
                "AdamW betas must be in [0, 1), got {} and {}",
                cfg.beta1, cfg.beta2
            )));
        }
        if !(cfg.eps > 0.0 && cfg.weight_decay >= 0.0 && cfg.lr >= 0.0) {
            return Err(TrainError::Config(
                "AdamW needs eps > 0, weight_decay >= 0 and lr >= 0".into(),
            ));
        }
        let m = vars
            .iter()
            .map(|v| v.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let v = m.clone();
        Ok(AdamW {
            cfg,
            vars,
            m,
            v,
            t: 0,
        })
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// The moment estimates and step count, for a checkpoint.
    pub fn state(&self) -> (&[Tensor], &[Tensor], u64) {
        (&self.m, &self.v, self.t)
    }

    /// Restores what [`AdamW::state`] gave (shapes must match the parameters').
    pub fn set_state(&mut self, m: Vec<Tensor>, v: Vec<Tensor>, t: u64) -> Result<(), TrainError> {
        if m.len() != self.vars.len() || v.len() != self.vars.len() {
            return Err(TrainError::Config(format!(
                "optimizer state for {} parameters, the model has {}",
                m.len(),
                self.vars.len()
            )));
        }
        for ((p, m), v) in self.vars.iter().zip(&m).zip(&v) {
            if p.dims() != m.dims() || p.dims() != v.dims() {
                return Err(TrainError::Config(format!(
                    "optimizer state of shape {:?} for a parameter of shape {:?}",
                    m.dims(),
                    p.dims()
                )));
            }
        }
        self.m = m;
        self.v = v;
        self.t = t;
        Ok(())
    }

    /// One update with `grads[i]` the gradient of `vars[i]`, at learning rate `lr`.
    pub fn step(&mut self, grads: &[Tensor], lr: f64) -> Result<(), TrainError> {
        if grads.len() != self.vars.len() {
            return Err(TrainError::Config(format!(
                "AdamW got {} gradients for {} parameters",
                grads.len(),
                self.vars.len()
            )));
        }
        self.t += 1;
        let c = &self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        for (i, g) in grads.iter().enumerate() {
            // Everything here is detached from the autograd graph: a gradient computed
            // by `backward()` still records the operations (on saved activations) it
            // came from, and keeping it in the moments would keep every step's graph
            // alive — memory growing by the size of a forward pass per step.
            let g = g.detach();
            let p = self.vars[i].as_tensor().detach();
            let m = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let decayed = (p * (1.0 - lr * c.weight_decay))?;
            let denom = ((&v / bc2)?.sqrt()? + c.eps)?;
            let update = ((&m / bc1)? / denom)?;
            let new = (decayed - (update * lr)?)?;
            self.vars[i].set(&new)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

/// How the learning rate falls after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Decay {
    Cosine,
    Linear,
}

/// Hugging Face's `get_{cosine,linear}_schedule_with_warmup`: at update `s` (from 0) the
/// learning rate is `peak · s/warmup` while `s < warmup`, then, with
/// `p = (s − warmup)/(total − warmup)`, `peak · ½(1 + cos πp)` (cosine) or `peak · (1 − p)`
/// (linear), never below 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub peak: f64,
    pub warmup: usize,
    pub total: usize,
    pub decay: Decay,
}

impl Schedule {
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * step as f64 / self.warmup.max(1) as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1) as f64;
        let p = ((step - self.warmup) as f64 / span).min(1.0);
        let f = match self.decay {
            Decay::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * p).cos()),
            Decay::Linear => 1.0 - p,
        };
        self.peak * f.max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn val(v: &Var) -> Vec<f32> {
        v.as_tensor().to_vec1().unwrap()
    }

    /// A gradient from `backward()` records the operations it came from (here 2·x·y, made
    /// from the variable x); the moments AdamW keeps must not, or every step's graph
    /// would stay alive (memory grew by a forward pass per step before this).
    #[test]
    fn moments_hold_no_graph() {
        let x = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let y = (x.as_tensor() * 3.0).unwrap();
        let loss = (x.as_tensor() * &y).unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap().get(x.as_tensor()).unwrap().clone();
        assert!(g.track_op(), "the gradient records its operations");
        let mut opt = AdamW::new(vec![x.clone()], AdamWConfig::default()).unwrap();
        opt.step(&[g], 1e-3).unwrap();
        let (m, v, _) = opt.state();
        assert!(!m[0].track_op() && !v[0].track_op());
    }

    /// Two steps on two scalars, by hand. lr 0.1, β1 0.9, β2 0.999, eps 1e-8, wd 0.5.
    /// p = [1, −2], g1 = [0.5, 0.1], g2 = [−0.5, 0.3].
    /// Step 1: decay: p·(1 − 0.05) = [0.95, −1.9]. m = [0.05, 0.01], v = [2.5e-4, 1e-5];
    ///   m̂ = m/0.1 = [0.5, 0.1], v̂ = v/0.001 = [0.25, 0.01], √v̂ = [0.5, 0.1]:
    ///   update ≈ [1, 1] (exactly 0.5/(0.5+1e-8)), p = [0.95 − 0.1, −1.9 − 0.1] = [0.85, −2.0].
    /// Step 2: decay: [0.8075, −1.9]. m = 0.9·[0.05, 0.01] + 0.1·[−0.5, 0.3] = [−0.005, 0.039];
    ///   v = 0.999·[2.5e-4, 1e-5] + 0.001·[0.25, 0.09] = [4.9975e-4, 9.999e-5];
    ///   m̂ = m/0.19 = [−0.0263158, 0.2052632]; v̂ = v/0.001999 = [0.2500000, 0.0500200];
    ///   √v̂ = [0.5, 0.2236515]; update = [−0.0526316, 0.9177811];
    ///   p = [0.8075 + 0.0052632, −1.9 − 0.0917781] = [0.8127632, −1.9917781].
    #[test]
    fn adamw_matches_hand_computed_steps() {
        let dev = Device::Cpu;
        let p = Var::from_vec(vec![1f32, -2.0], 2, &dev).unwrap();
        let cfg = AdamWConfig {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.5,
        };
        let mut opt = AdamW::new(vec![p.clone()], cfg).unwrap();
        let g = |a: f32, b: f32| Tensor::new(&[a, b], &dev).unwrap();
        opt.step(&[g(0.5, 0.1)], 0.1).unwrap();
        let v = val(&p);
        assert!(
            (v[0] - 0.85).abs() < 1e-6 && (v[1] + 2.0).abs() < 1e-6,
            "{v:?}"
        );
        opt.step(&[g(-0.5, 0.3)], 0.1).unwrap();
        let v = val(&p);
        assert!((v[0] - 0.812_763_2).abs() < 1e-5, "{v:?}");
        assert!((v[1] + 1.991_778_1).abs() < 1e-5, "{v:?}");
        assert_eq!(opt.steps(), 2);
    }

    /// peak 1, warm-up 2, total 6: s=0 → 0, s=1 → 0.5, s=2 → p=0 → 1,
    /// s=3 → p=0.25 → cosine ½(1+cos π/4) = 0.8535534, linear 0.75; s=4 → 0.5 both;
    /// s=6 and later → 0.
    #[test]
    fn schedule_warms_up_then_decays() {
        let s = |decay| Schedule {
            peak: 1.0,
            warmup: 2,
            total: 6,
            decay,
        };
        let c = s(Decay::Cosine);
        let l = s(Decay::Linear);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-7;
        assert!(close(c.lr(0), 0.0) && close(c.lr(1), 0.5) && close(c.lr(2), 1.0));
        assert!(close(c.lr(3), 0.853_553_4) && close(l.lr(3), 0.75));
        assert!(close(c.lr(4), 0.5) && close(l.lr(4), 0.5));
        assert!(close(c.lr(6), 0.0) && close(l.lr(9), 0.0));
    }
}
