//! Go's own `text/template` execution tests (`exec_test.go`), for the
//! cases that do not depend on Go methods or test-only functions, with the
//! test data as template values.

use std::rc::Rc;

use super::exec::{Env, Limits};
use super::parse;
use crate::helm::funcs;
use crate::helm::value::{Elem, Entries, List, Value};

fn ints(items: &[i64]) -> Value {
    Value::List(Rc::new(List {
        elem: Elem::Int,
        items: items.iter().map(|i| Value::Int(*i)).collect(),
    }))
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::map(
        pairs
            .into_iter()
            .map(|(k, v)| (Rc::from(k), v))
            .collect::<Entries>(),
    )
}

/// Go's `tVal`, as far as values can stand for it.
fn t_val() -> Value {
    map(vec![
        ("True", Value::Bool(true)),
        ("I", Value::Int(17)),
        ("U16", Value::Int(16)),
        ("X", Value::str("x")),
        ("S", Value::str("xyz")),
        ("U", map(vec![("V", Value::str("v"))])),
        ("FloatZero", Value::Float(0.0)),
        ("SI", ints(&[3, 4, 5])),
        ("SIEmpty", ints(&[])),
        ("SB", Value::list(vec![Value::Bool(true), Value::Bool(false)])),
        (
            "MSI",
            map(vec![
                ("one", Value::Int(1)),
                ("two", Value::Int(2)),
                ("three", Value::Int(3)),
            ]),
        ),
        ("MSIone", map(vec![("one", Value::Int(1))])),
        ("MSIEmpty", map(vec![])),
        ("MXI", map(vec![("one", Value::Int(1))])),
        (
            "SMSI",
            Value::list(vec![
                map(vec![("one", Value::Int(1)), ("two", Value::Int(2))]),
                map(vec![("eleven", Value::Int(11)), ("twelve", Value::Int(12))]),
            ]),
        ),
        ("Empty0", Value::Nil),
        ("Empty1", Value::Int(3)),
        ("Empty2", Value::str("empty2")),
        ("Empty3", ints(&[7, 8])),
        ("Empty4", map(vec![("V", Value::str("UinEmpty"))])),
        ("PSI", ints(&[21, 22, 23])),
        ("PS", Value::str("a string")),
        ("PI", Value::Int(23)),
    ])
}

fn exec(text: &str, data: Value) -> Result<String, String> {
    let trees = parse::parse("t", text, &funcs::lookup).map_err(|e| e.to_string())?;
    let tree = trees.get("t").cloned().ok_or("no tree")?;
    let mut env = Env::new(Rc::new(trees), Limits::default(), Box::new(()));
    let mut out = String::new();
    env.run(&tree, data, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

#[test]
fn go_exec_tests() {
    let t = t_val;
    // (name, input, output, data, ok)
    let cases: Vec<(&str, &str, &str, Value, bool)> = vec![
        ("empty", "", "", Value::Nil, true),
        ("text", "some text", "some text", Value::Nil, true),
        ("nil action", "{{nil}}", "", Value::Nil, false),
        ("ideal int", "{{typeOf 3}}", "int", Value::Int(0), true),
        ("ideal float", "{{typeOf 1.0}}", "float64", Value::Int(0), true),
        (
            "ideal exp float",
            "{{typeOf 1e1}}",
            "float64",
            Value::Int(0),
            true,
        ),
        (
            "ideal int big",
            "{{typeOf 0x7fffffffffffffff}}",
            "int",
            Value::Int(0),
            true,
        ),
        (
            "ideal too big",
            "{{typeOf 0x8000000000000000}}",
            "",
            Value::Int(0),
            false,
        ),
        (".X", "-{{.X}}-", "-x-", t(), true),
        (".U.V", "-{{.U.V}}-", "-v-", t(), true),
        ("map .one", "{{.MSI.one}}", "1", t(), true),
        ("map .two", "{{.MSI.two}}", "2", t(), true),
        ("map .NO", "{{.MSI.NO}}", "<no value>", t(), true),
        ("map .one interface", "{{.MXI.one}}", "1", t(), true),
        ("map .WRONG args", "{{.MSI.one 1}}", "", t(), false),
        ("dot int", "<{{.}}>", "<13>", Value::Int(13), true),
        ("dot float", "<{{.}}>", "<15.1>", Value::Float(15.1), true),
        ("dot bool", "<{{.}}>", "<true>", Value::Bool(true), true),
        ("dot string", "<{{.}}>", "<hello>", Value::str("hello"), true),
        ("dot slice", "<{{.}}>", "<[-1 -2 -3]>", ints(&[-1, -2, -3]), true),
        (
            "dot map",
            "<{{.}}>",
            "<map[two:22]>",
            map(vec![("two", Value::Int(22))]),
            true,
        ),
        ("$ int", "{{$}}", "123", Value::Int(123), true),
        ("$.I", "{{$.I}}", "17", t(), true),
        ("$.U.V", "{{$.U.V}}", "v", t(), true),
        ("declare in action", "{{$x := $.U.V}}{{$x}}", "v", t(), true),
        ("simple assignment", "{{$x := 2}}{{$x = 3}}{{$x}}", "3", t(), true),
        (
            "nested assignment",
            "{{$x := 2}}{{if true}}{{$x = 3}}{{end}}{{$x}}",
            "3",
            t(),
            true,
        ),
        (
            "nested assignment changes the last declaration",
            "{{$x := 1}}{{if true}}{{$x := 2}}{{if true}}{{$x = 3}}{{end}}{{end}}{{$x}}",
            "1",
            t(),
            true,
        ),
        ("*[]int", "{{.PSI}}", "[21 22 23]", t(), true),
        ("*[]int[1]", "{{index .PSI 1}}", "22", t(), true),
        ("empty nil", "{{.Empty0}}", "<no value>", t(), true),
        ("empty with int", "{{.Empty1}}", "3", t(), true),
        ("empty with string", "{{.Empty2}}", "empty2", t(), true),
        ("empty with slice", "{{.Empty3}}", "[7 8]", t(), true),
        ("empty with struct, field", "{{.Empty4.V}}", "UinEmpty", t(), true),
        ("call nil", "{{call nil}}", "", t(), false),
        ("parens: $ in paren", "{{($).X}}", "x", t(), true),
        ("if true", "{{if true}}TRUE{{end}}", "TRUE", t(), true),
        (
            "if false",
            "{{if false}}TRUE{{else}}FALSE{{end}}",
            "FALSE",
            t(),
            true,
        ),
        ("if nil", "{{if nil}}TRUE{{end}}", "", t(), false),
        (
            "if 1",
            "{{if 1}}NON-ZERO{{else}}ZERO{{end}}",
            "NON-ZERO",
            t(),
            true,
        ),
        ("if 0", "{{if 0}}NON-ZERO{{else}}ZERO{{end}}", "ZERO", t(), true),
        (
            "if 1.5",
            "{{if 1.5}}NON-ZERO{{else}}ZERO{{end}}",
            "NON-ZERO",
            t(),
            true,
        ),
        (
            "if 0.0",
            "{{if .FloatZero}}NON-ZERO{{else}}ZERO{{end}}",
            "ZERO",
            t(),
            true,
        ),
        (
            "if emptystring",
            "{{if ``}}NON-EMPTY{{else}}EMPTY{{end}}",
            "EMPTY",
            t(),
            true,
        ),
        (
            "if string",
            "{{if `notempty`}}NON-EMPTY{{else}}EMPTY{{end}}",
            "NON-EMPTY",
            t(),
            true,
        ),
        (
            "if emptyslice",
            "{{if .SIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}",
            "EMPTY",
            t(),
            true,
        ),
        (
            "if slice",
            "{{if .SI}}NON-EMPTY{{else}}EMPTY{{end}}",
            "NON-EMPTY",
            t(),
            true,
        ),
        (
            "if emptymap",
            "{{if .MSIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}",
            "EMPTY",
            t(),
            true,
        ),
        (
            "if map",
            "{{if .MSI}}NON-EMPTY{{else}}EMPTY{{end}}",
            "NON-EMPTY",
            t(),
            true,
        ),
        (
            "if map unset",
            "{{if .MXI.none}}NON-ZERO{{else}}ZERO{{end}}",
            "ZERO",
            t(),
            true,
        ),
        (
            "if map not unset",
            "{{if not .MXI.none}}ZERO{{else}}NON-ZERO{{end}}",
            "ZERO",
            t(),
            true,
        ),
        (
            "if $x with $y int",
            "{{if $x := true}}{{with $y := .I}}{{$x}},{{$y}}{{end}}{{end}}",
            "true,17",
            t(),
            true,
        ),
        (
            "if $x with $x int",
            "{{if $x := true}}{{with $x := .I}}{{$x}},{{end}}{{$x}}{{end}}",
            "17,true",
            t(),
            true,
        ),
        (
            "if else if",
            "{{if false}}FALSE{{else if true}}TRUE{{end}}",
            "TRUE",
            t(),
            true,
        ),
        (
            "if else chain",
            "{{if eq 1 3}}1{{else if eq 2 3}}2{{else if eq 3 3}}3{{end}}",
            "3",
            t(),
            true,
        ),
        ("print", r#"{{print "hello, print"}}"#, "hello, print", t(), true),
        ("print 123", "{{print 1 2 3}}", "1 2 3", t(), true),
        ("print nil", "{{print nil}}", "<nil>", t(), true),
        ("println", "{{println 1 2 3}}", "1 2 3\n", t(), true),
        ("printf int", r#"{{printf "%04x" 127}}"#, "007f", t(), true),
        ("printf float", r#"{{printf "%g" 3.5}}"#, "3.5", t(), true),
        ("printf string", r#"{{printf "%s" "hello"}}"#, "hello", t(), true),
        ("printf field", r#"{{printf "%s" .U.V}}"#, "v", t(), true),
        (
            "printf dot",
            r#"{{with .I}}{{printf "%d" .}}{{end}}"#,
            "17",
            t(),
            true,
        ),
        (
            "printf var",
            r#"{{with $x := .I}}{{printf "%d" $x}}{{end}}"#,
            "17",
            t(),
            true,
        ),
        (
            "html",
            r#"{{html "<script>alert(\"XSS\");</script>"}}"#,
            "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;",
            Value::Nil,
            true,
        ),
        ("html .PS", "{{html .PS}}", "a string", t(), true),
        (
            "js",
            "{{js .}}",
            r"It\'d be nice.",
            Value::str("It'd be nice."),
            true,
        ),
        (
            "urlquery",
            r#"{{"http://www.example.org/"|urlquery}}"#,
            "http%3A%2F%2Fwww.example.org%2F",
            Value::Nil,
            true,
        ),
        (
            "not",
            "{{not true}} {{not false}}",
            "false true",
            Value::Nil,
            true,
        ),
        (
            "and",
            "{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}",
            "false 0 0 1",
            Value::Nil,
            true,
        ),
        (
            "or",
            "{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}",
            "0 1 true 1",
            Value::Nil,
            true,
        ),
        (
            "boolean if",
            "{{if and true 1 `hi`}}TRUE{{else}}FALSE{{end}}",
            "TRUE",
            t(),
            true,
        ),
        (
            "boolean if not",
            "{{if and true 1 `hi` | not}}TRUE{{else}}FALSE{{end}}",
            "FALSE",
            Value::Nil,
            true,
        ),
        (
            "and short-circuits",
            "{{and false .Missing.Field}}",
            "false",
            t(),
            true,
        ),
        ("or short-circuits", "{{or 1 .Missing.Field}}", "1", t(), true),
        ("slice[0]", "{{index .SI 0}}", "3", t(), true),
        ("slice[1]", "{{index .SI 1}}", "4", t(), true),
        ("slice[HUGE]", "{{index .SI 10}}", "", t(), false),
        ("slice[WRONG]", "{{index .SI `hello`}}", "", t(), false),
        ("slice[nil]", "{{index .SI nil}}", "", t(), false),
        ("map[one]", "{{index .MSI `one`}}", "1", t(), true),
        ("map[two]", "{{index .MSI `two`}}", "2", t(), true),
        ("map[nil]", "{{index .MSI nil}}", "", t(), false),
        ("map[WRONG]", "{{index .MSI 10}}", "", t(), false),
        ("double index", "{{index .SMSI 1 `eleven`}}", "11", t(), true),
        ("nil[1]", "{{index nil 1}}", "", t(), false),
        ("len slice", "{{len .SI}}", "3", t(), true),
        ("len map", "{{len .MSI }}", "3", t(), true),
        ("len of int", "{{len 3}}", "", t(), false),
        ("len of nothing", "{{len .Empty0}}", "", t(), false),
        ("with true", "{{with true}}{{.}}{{end}}", "true", t(), true),
        (
            "with false",
            "{{with false}}{{.}}{{else}}FALSE{{end}}",
            "FALSE",
            t(),
            true,
        ),
        ("with 1", "{{with 1}}{{.}}{{else}}ZERO{{end}}", "1", t(), true),
        ("with 0", "{{with 0}}{{.}}{{else}}ZERO{{end}}", "ZERO", t(), true),
        (
            "with 1.5",
            "{{with 1.5}}{{.}}{{else}}ZERO{{end}}",
            "1.5",
            t(),
            true,
        ),
        (
            "with 0.0",
            "{{with .FloatZero}}{{.}}{{else}}ZERO{{end}}",
            "ZERO",
            t(),
            true,
        ),
        (
            "with emptystring",
            "{{with ``}}{{.}}{{else}}EMPTY{{end}}",
            "EMPTY",
            t(),
            true,
        ),
        (
            "with string",
            "{{with `notempty`}}{{.}}{{else}}EMPTY{{end}}",
            "notempty",
            t(),
            true,
        ),
        (
            "with emptyslice",
            "{{with .SIEmpty}}{{.}}{{else}}EMPTY{{end}}",
            "EMPTY",
            t(),
            true,
        ),
        (
            "with slice",
            "{{with .SI}}{{.}}{{else}}EMPTY{{end}}",
            "[3 4 5]",
            t(),
            true,
        ),
        (
            "with emptymap",
            "{{with .MSIEmpty}}{{.}}{{else}}EMPTY{{end}}",
            "EMPTY",
            t(),
            true,
        ),
        (
            "with map",
            "{{with .MSIone}}{{.}}{{else}}EMPTY{{end}}",
            "map[one:1]",
            t(),
            true,
        ),
        ("with $x int", "{{with $x := .I}}{{$x}}{{end}}", "17", t(), true),
        (
            "with $x struct.U.V",
            "{{with $x := $}}{{$x.U.V}}{{end}}",
            "v",
            t(),
            true,
        ),
        (
            "with variable and action",
            "{{with $x := $}}{{$y := $.U.V}}{{$y}}{{end}}",
            "v",
            t(),
            true,
        ),
        (
            "with else with",
            "{{with 0}}{{.}}{{else with true}}{{.}}{{end}}",
            "true",
            t(),
            true,
        ),
        (
            "range []int",
            "{{range .SI}}-{{.}}-{{end}}",
            "-3--4--5-",
            t(),
            true,
        ),
        (
            "range empty no else",
            "{{range .SIEmpty}}-{{.}}-{{end}}",
            "",
            t(),
            true,
        ),
        (
            "range []int else",
            "{{range .SI}}-{{.}}-{{else}}EMPTY{{end}}",
            "-3--4--5-",
            t(),
            true,
        ),
        (
            "range empty else",
            "{{range .SIEmpty}}-{{.}}-{{else}}EMPTY{{end}}",
            "EMPTY",
            t(),
            true,
        ),
        (
            "range []bool",
            "{{range .SB}}-{{.}}-{{end}}",
            "-true--false-",
            t(),
            true,
        ),
        (
            "range map",
            "{{range .MSI}}-{{.}}-{{end}}",
            "-1--3--2-",
            t(),
            true,
        ),
        (
            "range empty map no else",
            "{{range .MSIEmpty}}-{{.}}-{{end}}",
            "",
            t(),
            true,
        ),
        (
            "range map else",
            "{{range .MSI}}-{{.}}-{{else}}EMPTY{{end}}",
            "-1--3--2-",
            t(),
            true,
        ),
        (
            "range empty map else",
            "{{range .MSIEmpty}}-{{.}}-{{else}}EMPTY{{end}}",
            "EMPTY",
            t(),
            true,
        ),
        (
            "range empty interface",
            "{{range .Empty3}}-{{.}}-{{else}}EMPTY{{end}}",
            "-7--8-",
            t(),
            true,
        ),
        (
            "range empty nil",
            "{{range .Empty0}}-{{.}}-{{end}}",
            "",
            t(),
            true,
        ),
        (
            "range $x SI",
            "{{range $x := .SI}}<{{$x}}>{{end}}",
            "<3><4><5>",
            t(),
            true,
        ),
        (
            "range $x $y SI",
            "{{range $x, $y := .SI}}<{{$x}}={{$y}}>{{end}}",
            "<0=3><1=4><2=5>",
            t(),
            true,
        ),
        (
            "range $x MSIone",
            "{{range $x := .MSIone}}<{{$x}}>{{end}}",
            "<1>",
            t(),
            true,
        ),
        (
            "range $x $y MSIone",
            "{{range $x, $y := .MSIone}}<{{$x}}={{$y}}>{{end}}",
            "<one=1>",
            t(),
            true,
        ),
        (
            "range $x PSI",
            "{{range $x := .PSI}}<{{$x}}>{{end}}",
            "<21><22><23>",
            t(),
            true,
        ),
        (
            "declare in range",
            "{{range $x := .PSI}}<{{$foo:=$x}}{{$x}}>{{end}}",
            "<21><22><23>",
            t(),
            true,
        ),
        (
            "range break",
            "{{range .SI}}{{if eq . 4}}{{break}}{{end}}-{{.}}-{{end}}",
            "-3-",
            t(),
            true,
        ),
        (
            "range continue",
            "{{range .SI}}{{if eq . 4}}{{continue}}{{end}}-{{.}}-{{end}}",
            "-3--5-",
            t(),
            true,
        ),
        (
            "range over int is Go 1.22+",
            "{{range 5}}x{{end}}",
            "",
            t(),
            false,
        ),
        (
            "or as if true",
            r#"{{or .SI "slice is empty"}}"#,
            "[3 4 5]",
            t(),
            true,
        ),
        (
            "or as if false",
            r#"{{or .SIEmpty "slice is empty"}}"#,
            "slice is empty",
            t(),
            true,
        ),
        ("bug7a", "{{3 2}}", "", t(), false),
        ("bug7b", "{{$x := 1}}{{$x 2}}", "", t(), false),
        ("bug7c", "{{$x := 1}}{{3 | $x}}", "", t(), false),
        (
            "bug9",
            "{{.cause}}",
            "neglect",
            map(vec![("cause", Value::str("neglect"))]),
            true,
        ),
        ("bug12xe", "{{printf `%T` 0xef}}", "int", Value::Nil, true),
        ("bug12xE", "{{printf `%T` 0xEE}}", "int", Value::Nil, true),
        ("bug14a", "{{(nil).True}}", "", t(), false),
        ("bug14b", "{{$x := nil}}{{$x.anything}}", "", t(), false),
        (
            "bug14c",
            r#"{{$x := (1.0)}}{{$y := ("hello")}}{{$x.anything}}{{$y.true}}"#,
            "",
            t(),
            false,
        ),
        ("bug16a", "{{true|printf}}", "", t(), false),
        ("bug16b", "{{1|printf}}", "", t(), false),
        ("bug16c", "{{1.1|printf}}", "", t(), false),
        ("bug16d", "{{'x'|printf}}", "", t(), false),
        ("bug16k", r#"{{"aaa"|printf }}"#, "aaa", t(), true),
        (
            "comparison eq",
            "{{eq 1 1}} {{eq 1 2}} {{eq `a` `a`}} {{eq 1 2 3 1}}",
            "true false true true",
            t(),
            true,
        ),
        (
            "comparison lt",
            "{{lt 1 2}} {{lt 2 1}} {{lt `a` `b`}} {{le 1 1}} {{gt 2 1}} {{ge 1 2}}",
            "true false true true true false",
            t(),
            true,
        ),
        ("comparison incompatible", "{{eq 1 `a`}}", "", t(), false),
        ("comparison of int and float", "{{eq 1 1.0}}", "", t(), false),
        (
            "template with data",
            r#"{{define "x"}}[{{.}}]{{end}}{{template "x" 3}}"#,
            "[3]",
            t(),
            true,
        ),
        (
            "template without data",
            r#"{{define "x"}}[{{.}}]{{end}}{{template "x"}}"#,
            "[<no value>]",
            t(),
            true,
        ),
        (
            "template inherits no variables",
            r#"{{define "x"}}{{$}}{{end}}{{$y := 1}}{{template "x" 2}}"#,
            "2",
            t(),
            true,
        ),
        ("block", r#"{{block "b" .I}}<{{.}}>{{end}}"#, "<17>", t(), true),
        (
            "trim markers",
            "a {{- 1 -}} b {{- /* c */ -}} c",
            "a1bc",
            t(),
            true,
        ),
    ];
    let mut failures = Vec::new();
    for (name, input, output, data, ok) in cases {
        match (exec(input, data), ok) {
            (Ok(got), true) if got == output => {}
            (Err(_), false) => {}
            (got, _) => failures.push(format!(
                "{name}: {input:?} gave {got:?}, want {output:?} (ok={ok})"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn exec_errors_read_like_go() {
    let cases = [
        (
            "{{.Values.a.b}}",
            "template: t:1:9: executing \"t\" at <.Values.a.b>: nil pointer evaluating interface {}.b",
        ),
        (
            "{{index .SI 10}}",
            "template: t:1:2: executing \"t\" at <index .SI 10>: error calling index: index out of range: 10",
        ),
        (
            "{{len 3}}",
            "template: t:1:2: executing \"t\" at <len 3>: error calling len: len of type int",
        ),
        (
            "{{template \"no\"}}",
            "template: t:1:11: executing \"t\" at <{{template \"no\"}}>: template \"no\" not defined",
        ),
        (
            "{{nindent .I}}",
            "template: t:1:2: executing \"t\" at <nindent>: wrong number of args for nindent: want 2 got 1",
        ),
    ];
    for (input, want) in cases {
        let data = map(vec![
            ("Values", map(vec![("a", Value::Nil)])),
            ("SI", ints(&[1])),
            ("I", Value::Int(1)),
        ]);
        assert_eq!(exec(input, data).unwrap_err(), want, "{input}");
    }
}

#[test]
fn include_recursion_is_bounded() {
    // Renders run on a thread with a large stack (render::render); so does this.
    let err = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let text = r#"{{define "loop"}}{{include "loop" .}}{{end}}{{include "loop" .}}"#;
            exec(text, Value::Nil).unwrap_err()
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(
        err.contains("rendering template has a nested reference name: loop"),
        "{err}"
    );
}

#[test]
fn output_size_is_bounded() {
    let trees = parse::parse("t", "{{range .}}{{.}}{{end}}", &funcs::lookup).unwrap();
    let tree = trees["t"].clone();
    let limits = Limits {
        max_output: 100,
        ..Limits::default()
    };
    let mut env = Env::new(Rc::new(trees), limits, Box::new(()));
    let data = Value::list((0..100).map(|_| Value::str("0123456789")).collect());
    let mut out = String::new();
    let err = env.run(&tree, data, &mut out).unwrap_err();
    assert!(err.message.contains("output too large"), "{}", err.message);
}
