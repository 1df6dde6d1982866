//! Sprig's arithmetic (`numeric.go` and the closures in `functions.go`):
//! integer math on `int64` (through cast's conversions), float math through
//! exact decimals as shopspring/decimal does it, and the conversions `int`,
//! `int64`, `float64`, `toDecimal`.

use super::{FuncDef, Ty, err, f, int, strval, to_float64, to_int64, v};
use crate::helm::value::Value;

fn div_zero<T>() -> Result<T, super::FnError> {
    err("runtime error: integer divide by zero")
}

/// An exact decimal: `mant × 10^exp`.
#[derive(Clone, Copy, Debug)]
struct Dec {
    mant: i128,
    exp: i32,
}

impl Dec {
    /// shopspring's `NewFromFloat`: the shortest decimal that reads back as `f`.
    fn from_f64(f: f64) -> Option<Dec> {
        if !f.is_finite() {
            return None;
        }
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e')?;
        let exp: i32 = exp.parse().ok()?;
        let neg = mant.starts_with('-');
        let mant = mant.trim_start_matches('-');
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        let digits = format!("{int}{frac}");
        let m: i128 = digits.parse().ok()?;
        Some(Dec {
            mant: if neg { -m } else { m },
            exp: exp - frac.len() as i32,
        })
    }

    fn to_f64(self) -> f64 {
        format!("{}e{}", self.mant, self.exp).parse().unwrap_or(f64::NAN)
    }

    fn align(a: Dec, b: Dec) -> Option<(i128, i128, i32)> {
        let exp = a.exp.min(b.exp);
        let scale = |d: Dec| -> Option<i128> {
            let shift = u32::try_from(d.exp - exp).ok()?;
            d.mant.checked_mul(10i128.checked_pow(shift)?)
        };
        Some((scale(a)?, scale(b)?, exp))
    }

    fn add(a: Dec, b: Dec) -> Option<Dec> {
        let (x, y, exp) = Dec::align(a, b)?;
        Some(Dec {
            mant: x.checked_add(y)?,
            exp,
        })
    }

    fn sub(a: Dec, b: Dec) -> Option<Dec> {
        let (x, y, exp) = Dec::align(a, b)?;
        Some(Dec {
            mant: x.checked_sub(y)?,
            exp,
        })
    }

    fn mul(a: Dec, b: Dec) -> Option<Dec> {
        Some(Dec {
            mant: a.mant.checked_mul(b.mant)?,
            exp: a.exp.checked_add(b.exp)?,
        })
    }

    /// shopspring's `Div`: 16 decimal places, rounded half away from zero.
    fn div(a: Dec, b: Dec) -> Option<Dec> {
        if b.mant == 0 {
            return None;
        }
        const PREC: i32 = 16;
        // a/b = (am/bm) × 10^(ae-be); want mant at exp -PREC.
        let shift = a.exp - b.exp + PREC;
        let (num, den) = if shift >= 0 {
            (a.mant.checked_mul(10i128.checked_pow(shift as u32)?)?, b.mant)
        } else {
            (a.mant, b.mant.checked_mul(10i128.checked_pow((-shift) as u32)?)?)
        };
        let q = num / den;
        let r = num % den;
        let mut mant = q;
        if r != 0 && r.unsigned_abs() * 2 >= den.unsigned_abs() {
            mant += if (num < 0) != (den < 0) { -1 } else { 1 };
        }
        Some(Dec { mant, exp: -PREC })
    }
}

fn decimal_op(
    a: &Value,
    rest: &[Value],
    op: fn(Dec, Dec) -> Option<Dec>,
    float_op: fn(f64, f64) -> f64,
) -> f64 {
    let mut acc_f = to_float64(a);
    let mut acc = Dec::from_f64(acc_f);
    for x in rest {
        let xf = to_float64(x);
        acc = match (acc, Dec::from_f64(xf)) {
            (Some(d), Some(e)) => op(d, e),
            _ => None,
        };
        acc_f = match acc {
            Some(d) => d.to_f64(),
            None => float_op(acc_f, xf),
        };
    }
    acc.map_or(acc_f, Dec::to_f64)
}

pub const FUNCS: &[FuncDef] = &[
    f("add1", &[Ty::Any], |_, a| {
        Ok(Value::Int64(to_int64(&a[0]).wrapping_add(1)))
    }),
    v("add", &[], Ty::Any, |_, a| {
        Ok(Value::Int64(
            a.iter().fold(0i64, |s, x| s.wrapping_add(to_int64(x))),
        ))
    }),
    f("sub", &[Ty::Any, Ty::Any], |_, a| {
        Ok(Value::Int64(to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))))
    }),
    f("div", &[Ty::Any, Ty::Any], |_, a| {
        let (x, y) = (to_int64(&a[0]), to_int64(&a[1]));
        if y == 0 {
            return div_zero();
        }
        Ok(Value::Int64(x.wrapping_div(y)))
    }),
    f("mod", &[Ty::Any, Ty::Any], |_, a| {
        let (x, y) = (to_int64(&a[0]), to_int64(&a[1]));
        if y == 0 {
            return div_zero();
        }
        Ok(Value::Int64(x.wrapping_rem(y)))
    }),
    v("mul", &[Ty::Any], Ty::Any, |_, a| {
        Ok(Value::Int64(
            a[1..]
                .iter()
                .fold(to_int64(&a[0]), |p, x| p.wrapping_mul(to_int64(x))),
        ))
    }),
    f("randInt", &[Ty::Int, Ty::Int], |_, a| {
        let (min, max) = (int(&a[0]), int(&a[1]));
        if max - min <= 0 {
            return err("invalid argument to Intn");
        }
        Ok(Value::Int(min + super::random::below((max - min) as u64) as i64))
    }),
    f("add1f", &[Ty::Any], |_, a| {
        Ok(Value::Float(decimal_op(
            &a[0],
            &[Value::Int(1)],
            Dec::add,
            |x, y| x + y,
        )))
    }),
    v("addf", &[], Ty::Any, |_, a| {
        Ok(Value::Float(decimal_op(
            &Value::Float(0.0),
            &a,
            Dec::add,
            |x, y| x + y,
        )))
    }),
    v("subf", &[Ty::Any], Ty::Any, |_, a| {
        Ok(Value::Float(decimal_op(&a[0], &a[1..], Dec::sub, |x, y| x - y)))
    }),
    v("mulf", &[Ty::Any], Ty::Any, |_, a| {
        Ok(Value::Float(decimal_op(&a[0], &a[1..], Dec::mul, |x, y| x * y)))
    }),
    v("divf", &[Ty::Any], Ty::Any, |_, a| {
        if a[1..].iter().any(|x| to_float64(x) == 0.0) {
            return err("decimal division by 0");
        }
        Ok(Value::Float(decimal_op(&a[0], &a[1..], Dec::div, |x, y| x / y)))
    }),
    v("biggest", &[Ty::Any], Ty::Any, |_, a| {
        Ok(Value::Int64(a.iter().map(to_int64).max().unwrap_or(0)))
    }),
    v("max", &[Ty::Any], Ty::Any, |_, a| {
        Ok(Value::Int64(a.iter().map(to_int64).max().unwrap_or(0)))
    }),
    v("min", &[Ty::Any], Ty::Any, |_, a| {
        Ok(Value::Int64(a.iter().map(to_int64).min().unwrap_or(0)))
    }),
    v("maxf", &[Ty::Any], Ty::Any, |_, a| {
        Ok(Value::Float(
            a[1..]
                .iter()
                .fold(to_float64(&a[0]), |m, x| go_max(m, to_float64(x))),
        ))
    }),
    v("minf", &[Ty::Any], Ty::Any, |_, a| {
        Ok(Value::Float(
            a[1..]
                .iter()
                .fold(to_float64(&a[0]), |m, x| go_min(m, to_float64(x))),
        ))
    }),
    f("ceil", &[Ty::Any], |_, a| {
        Ok(Value::Float(to_float64(&a[0]).ceil()))
    }),
    f("floor", &[Ty::Any], |_, a| {
        Ok(Value::Float(to_float64(&a[0]).floor()))
    }),
    v("round", &[Ty::Any, Ty::Int], Ty::Float, |_, a| {
        let round_on = a.get(2).map_or(0.5, to_float64);
        let val = to_float64(&a[0]);
        let pow = 10f64.powf(int(&a[1]) as f64);
        let digit = pow * val;
        let div = digit.fract();
        let r = if div >= round_on {
            digit.ceil()
        } else {
            digit.floor()
        };
        Ok(Value::Float(r / pow))
    }),
    f("int", &[Ty::Any], |_, a| Ok(Value::Int(to_int64(&a[0])))),
    f("int64", &[Ty::Any], |_, a| Ok(Value::Int64(to_int64(&a[0])))),
    f("float64", &[Ty::Any], |_, a| Ok(Value::Float(to_float64(&a[0])))),
    f("toDecimal", &[Ty::Any], |_, a| {
        Ok(Value::Int64(i64::from_str_radix(&strval(&a[0]), 8).unwrap_or(0)))
    }),
];

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_math_is_decimal() {
        let v = |x: f64| Value::Float(x);
        assert_eq!(
            decimal_op(&v(0.0), &[v(1.1), v(2.2)], Dec::add, |x, y| x + y),
            3.3
        );
        assert_eq!(decimal_op(&v(1.5), &[v(0.1)], Dec::mul, |x, y| x * y), 0.15);
        assert_eq!(
            decimal_op(&v(1.0), &[v(3.0)], Dec::div, |x, y| x / y),
            0.3333333333333333
        );
        assert_eq!(decimal_op(&v(3.3), &[v(1.1)], Dec::sub, |x, y| x - y), 2.2);
    }
}
