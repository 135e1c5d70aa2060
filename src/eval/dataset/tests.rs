use super::*;
use serde_json::json;

fn ok(text: &str, format: Format) -> Dataset {
    parse(text, format, "cases", "cases.x").unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str, format: Format) -> String {
    parse(text, format, "cases", "cases.x")
        .expect_err("the dataset should be refused")
        .to_string()
}

#[test]
fn jsonl_cases_take_their_id_or_line_and_split_vars_from_reference() {
    let d = ok(
        "{\"id\": \"refund\", \"question\": \"Where is my refund?\", \"expected\": \"5 days\"}\n\
         \n\
         {\"vars\": {\"question\": \"Hi\"}, \"expected\": \"hello\", \"tags\": [\"smalltalk\"]}\n\
         {\"id\": 7, \"question\": \"Seven\"}\n",
        Format::Jsonl,
    );
    assert_eq!(d.name, "cases");
    let ids: Vec<&str> = d.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["refund", "3", "7"]);
    let first = &d.cases[0];
    assert_eq!(first.line, 1);
    assert_eq!(
        Value::Object(first.vars.clone()),
        json!({"question": "Where is my refund?"})
    );
    assert_eq!(
        Value::Object(first.reference.clone()),
        json!({"question": "Where is my refund?", "expected": "5 days"})
    );
    let second = &d.cases[1];
    assert_eq!(
        Value::Object(second.vars.clone()),
        json!({"question": "Hi"})
    );
    assert_eq!(
        Value::Object(second.reference.clone()),
        json!({"expected": "hello", "tags": ["smalltalk"]})
    );
}

#[test]
fn csv_rows_are_flat_cases_of_text_at_their_own_lines() {
    let d = ok(
        "id,question,expected\nr1,\"Where is\nmy refund?\",5 days\n,Hi,hello\n",
        Format::Csv,
    );
    assert_eq!(d.cases.len(), 2);
    assert_eq!(d.cases[0].id, "r1");
    assert_eq!(d.cases[0].vars["question"], json!("Where is\nmy refund?"));
    assert_eq!(d.cases[0].reference["expected"], json!("5 days"));
    assert!(!d.cases[0].vars.contains_key("expected"));
    // An empty id cell is no id: the case is named by its line.
    assert_eq!(d.cases[1].id, "4");
    assert_eq!(d.cases[1].line, 4);
}

#[test]
fn a_yaml_list_keeps_types_and_lines() {
    let d = ok(
        "- id: a\n  n: 3\n  expected: {total: 3}\n- vars: {n: 4}\n  expected: {total: 4}\n",
        Format::Yaml,
    );
    assert_eq!(d.cases[0].vars["n"], json!(3));
    assert_eq!(d.cases[1].id, "4");
    assert_eq!(d.cases[1].reference["expected"], json!({"total": 4}));
}

#[test]
fn every_bad_line_is_reported_at_its_place() {
    let out = err(
        "{\"id\": \"a\"}\n[1, 2]\n{\"id\": \"a\"}\n{\"vars\": 3}\n{\"id\": true}\n{\"q\": \n{\"id\": \" \"}\n",
        Format::Jsonl,
    );
    for expected in [
        "cases.x:2:1: a case is a JSON object, found an array",
        "cases.x:3:1: case id `a` is used twice (first on line 1)",
        "cases.x:4:1: `vars` of case 4 is an object, found a number",
        "cases.x:5:1: a case id is text or a whole number, found a boolean",
        "cases.x:6:",
        "cases.x:7:1: a case id is empty",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // The line itself is shown, like a workflow file's.
    assert!(out.contains("2 | [1, 2]"), "{out}");
    assert!(!out.contains(" at line "), "{out}");
}

#[test]
fn csv_and_yaml_problems_name_their_lines() {
    let out = err("id,q\na,1\nb,2,3\n", Format::Csv);
    assert!(
        out.contains("cases.x:3:1: invalid CSV: this row has 3 fields, the header 2"),
        "{out}"
    );
    let out = err("id,q,q\na,1,2\n", Format::Csv);
    assert!(out.contains("names column `q` twice"), "{out}");
    let out = err("- id: a\n- 3\n", Format::Yaml);
    assert!(
        out.contains("cases.x:2:3: a case is a mapping, found a number"),
        "{out}"
    );
    let out = err("id: a\n", Format::Yaml);
    assert!(
        out.contains("a YAML dataset is a list of cases, found a mapping"),
        "{out}"
    );
    let out = err("- [unclosed\n", Format::Yaml);
    assert!(out.starts_with("cases.x:"), "{out}");
}

#[test]
fn an_empty_dataset_is_refused() {
    assert!(err("\n\n", Format::Jsonl).contains("the dataset has no cases"));
    assert!(err("id,q\n", Format::Csv).contains("the dataset has no cases"));
    assert!(err("[]\n", Format::Yaml).contains("the dataset has no cases"));
}

#[test]
fn the_hash_names_the_bytes() {
    let a = ok("{\"q\": 1}\n", Format::Jsonl);
    let b = ok("{\"q\": 1}\n", Format::Jsonl);
    let c = ok("{\"q\": 2}\n", Format::Jsonl);
    assert_eq!(a.hash, b.hash);
    assert_ne!(a.hash, c.hash);
    // SHA-256 of the empty string, as every implementation gives it.
    assert_eq!(
        content_hash(b""),
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn the_format_comes_from_the_extension_and_others_are_refused() {
    assert_eq!(Format::of(Path::new("a/b.JSONL")), Some(Format::Jsonl));
    assert_eq!(Format::of(Path::new("b.yml")), Some(Format::Yaml));
    assert_eq!(Format::of(Path::new("b.txt")), None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.txt");
    std::fs::write(&path, "x").unwrap();
    let e = load(&path, "cases.txt").unwrap_err().to_string();
    assert!(
        e.contains("a dataset is a .jsonl, .csv or .yaml file"),
        "{e}"
    );
    let path = dir.path().join("cases.jsonl");
    std::fs::write(&path, "{\"id\": \"x\"}\n").unwrap();
    let d = load(&path, "cases.jsonl").unwrap();
    assert_eq!(d.name, "cases");
}
