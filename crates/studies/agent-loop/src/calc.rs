//! The calculator tool: evaluates `+ - * / ^`, parentheses, unary minus and decimal
//! numbers (`×`, `÷`, `−` and thousands separators accepted), with the usual precedence
//! (`^` binds tightest and is right-associative).

/// Evaluates `expr`, or says what is wrong with it.
pub fn eval(expr: &str) -> Result<f64, String> {
    let norm: String = expr
        .chars()
        .map(|c| match c {
            '×' | 'x' | 'X' => '*',
            '÷' => '/',
            '−' | '–' => '-',
            '\u{a0}' => ' ',
            c => c,
        })
        .collect();
    let toks = lex(&norm)?;
    let mut p = Parser { toks, at: 0 };
    let v = p.sum()?;
    if p.at != p.toks.len() {
        return Err(format!("unexpected `{}`", p.toks[p.at].show()));
    }
    if !v.is_finite() {
        return Err("the result is not a finite number (division by zero?)".into());
    }
    Ok(v)
}

/// A result as the tool prints it: integers without a decimal point, other values with
/// up to 10 significant decimals.
pub fn format(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.10}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Op(char),
}

impl Tok {
    fn show(&self) -> String {
        match self {
            Tok::Num(n) => n.to_string(),
            Tok::Op(c) => c.to_string(),
        }
    }
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let mut t = String::new();
            while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.' || cs[i] == ',') {
                if cs[i] != ',' {
                    t.push(cs[i]);
                }
                i += 1;
            }
            let v: f64 = t.parse().map_err(|_| format!("not a number: `{t}`"))?;
            out.push(Tok::Num(v));
        } else if "+-*/^()".contains(c) {
            out.push(Tok::Op(c));
            i += 1;
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    if out.is_empty() {
        return Err("empty expression".into());
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }
    fn eat(&mut self, op: char) -> bool {
        if self.peek() == Some(&Tok::Op(op)) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn sum(&mut self) -> Result<f64, String> {
        let mut v = self.product()?;
        loop {
            if self.eat('+') {
                v += self.product()?;
            } else if self.eat('-') {
                v -= self.product()?;
            } else {
                return Ok(v);
            }
        }
    }
    fn product(&mut self) -> Result<f64, String> {
        let mut v = self.unary()?;
        loop {
            if self.eat('*') {
                v *= self.unary()?;
            } else if self.eat('/') {
                v /= self.unary()?;
            } else {
                return Ok(v);
            }
        }
    }
    fn unary(&mut self) -> Result<f64, String> {
        if self.eat('-') {
            return Ok(-self.unary()?);
        }
        if self.eat('+') {
            return self.unary();
        }
        self.power()
    }
    fn power(&mut self) -> Result<f64, String> {
        let base = self.atom()?;
        if self.eat('^') {
            let exp = self.unary()?;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }
    fn atom(&mut self) -> Result<f64, String> {
        match self.toks.get(self.at).cloned() {
            Some(Tok::Num(n)) => {
                self.at += 1;
                Ok(n)
            }
            Some(Tok::Op('(')) => {
                self.at += 1;
                let v = self.sum()?;
                if !self.eat(')') {
                    return Err("missing `)`".into());
                }
                Ok(v)
            }
            Some(t) => Err(format!("unexpected `{}`", t.show())),
            None => Err("the expression ends too early".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_associativity_and_errors() {
        assert_eq!(eval("2 + 3 * 4").unwrap(), 14.0);
        assert_eq!(eval("(2 + 3) × 4").unwrap(), 20.0);
        assert_eq!(eval("10 - 4 - 3").unwrap(), 3.0);
        assert_eq!(eval("2 ^ 3 ^ 2").unwrap(), 512.0);
        assert_eq!(eval("-2 ^ 2").unwrap(), -4.0);
        assert_eq!(eval("1,250 ÷ 4").unwrap(), 312.5);
        assert_eq!(eval("7 − 10").unwrap(), -3.0);
        assert!(eval("1 / 0").unwrap_err().contains("finite"));
        assert!(eval("(1 + 2").unwrap_err().contains(")"));
        assert!(eval("2 +").unwrap_err().contains("early"));
        assert!(eval("ls -l").is_err());
        assert!(eval("").is_err());
        assert_eq!(format(312.5), "312.5");
        assert_eq!(format(-3.0), "-3");
        assert_eq!(format(1.0 / 3.0), "0.3333333333");
    }
}
