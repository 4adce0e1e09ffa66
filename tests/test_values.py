"""Values are read as CloudFormation reads them; intrinsics resolve as far as the template allows."""
from __future__ import annotations

from conftest import make_app

from dpguard.engine.values import ABSENT, ResRef, Unknown, alternatives, as_bool, as_int


def values_of(node, template=None, **kw):
    template = template or {"Resources": {}}
    app = make_app(template, **kw)
    return alternatives(node, app.templates[0])


def test_strings_read_as_booleans_and_numbers():
    assert as_bool("true") is True and as_bool("False") is False and as_bool(True) is True
    assert as_bool("yes") is None and as_bool(1) is None
    assert as_int("443") == 443 and as_int(443) == 443 and as_int("44.0") == 44
    assert as_int("http") is None and as_int(True) is None


def test_ref_to_resource_parameter_pseudo_and_novalue():
    tpl = {"Parameters": {"Env": {"Type": "String", "AllowedValues": ["dev", "prod"]},
                          "Free": {"Type": "String", "Default": "x"}},
           "Resources": {"B": {"Type": "AWS::S3::Bucket"}}}
    assert values_of({"Ref": "B"}, tpl) == [ResRef(0, "B")]
    assert values_of({"Ref": "Env"}, tpl) == ["dev", "prod"]
    [free] = values_of({"Ref": "Free"}, tpl)
    assert isinstance(free, Unknown) and "deploy time" in free.reason
    assert values_of({"Ref": "Free"}, tpl, trust_parameter_defaults=True) == ["x"]
    ssm = {"Parameters": {"Ami": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/path"}}, "Resources": {}}
    [value] = values_of({"Ref": "Ami"}, ssm, trust_parameter_defaults=True)
    assert isinstance(value, Unknown) and "SSM" in value.reason
    assert values_of({"Ref": "AWS::NoValue"}) == [ABSENT]
    assert values_of({"Ref": "AWS::Partition"}) == ["aws"]
    assert isinstance(values_of({"Ref": "Nope"})[0], Unknown)


def test_sub_join_keep_references_as_tokens():
    tpl = {"Resources": {"B": {"Type": "AWS::S3::Bucket"}}}
    assert values_of({"Fn::Sub": "arn:${AWS::Partition}:s3:::${B}/*"}, tpl) == ["arn:aws:s3:::⟨0:B⟩/*"]
    assert values_of({"Fn::Sub": "${B.Arn}/*"}, tpl) == ["⟨0:B.Arn⟩/*"]
    assert values_of({"Fn::Sub": ["${X}-${!Literal}", {"X": "a"}]}, tpl) == ["a-${Literal}"]
    assert values_of({"Fn::Join": ["", [{"Fn::GetAtt": ["B", "Arn"]}, "/*"]]}, tpl) == ["⟨0:B.Arn⟩/*"]


def test_join_of_references_parameters_and_other_calls():
    tpl = {"Parameters": {"Env": {"Type": "String", "AllowedValues": ["dev", "prod"]}},
           "Conditions": {"C": {"Fn::Equals": [{"Ref": "AWS::Region"}, "x"]}},
           "Resources": {"B": {"Type": "AWS::S3::Bucket"}}}
    arn = ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]
    assert values_of({"Fn::Join": ["", arn]}, tpl) == ["arn:aws:iam::⟨AWS::AccountId⟩:root"]
    assert values_of({"Fn::Join": ["-", [{"Ref": "B"}, {"Ref": "Env"}]]}, tpl) == ["⟨0:B⟩-dev", "⟨0:B⟩-prod"]
    assert values_of({"Fn::Join": ["/", ["a", {"Fn::If": ["C", "b", "c"]}, 7]]}, tpl) == ["a/b/7", "a/c/7"]
    assert values_of({"Fn::Join": ["", [{"Fn::Join": [".", ["x", {"Ref": "B"}]]}, "!"]]}, tpl) == ["x.⟨0:B⟩!"]
    [missing] = values_of({"Fn::Join": ["", ["a", {"Ref": "AWS::NoValue"}]]}, tpl)
    assert isinstance(missing, Unknown)
    [undefined] = values_of({"Fn::Join": ["", ["a", {"Ref": "Nope"}]]}, tpl)
    assert isinstance(undefined, Unknown)


def test_if_gives_both_branches_unless_the_condition_is_decided():
    tpl = {"Parameters": {"Env": {"Type": "String"}},
           "Conditions": {"Prod": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                          "Always": {"Fn::Equals": ["a", "a"]},
                          "Never": {"Fn::Not": [{"Condition": "Always"}]}},
           "Resources": {}}
    assert values_of({"Fn::If": ["Prod", "a", "b"]}, tpl) == ["a", "b"]
    assert values_of({"Fn::If": ["Always", "a", "b"]}, tpl) == ["a"]
    assert values_of({"Fn::If": ["Never", "a", "b"]}, tpl) == ["b"]


def test_find_in_map_with_unknown_key_judges_every_entry():
    tpl = {"Mappings": {"M": {"us-east-1": {"Enc": "true"}, "eu-west-1": {"Enc": "false"}}}, "Resources": {}}
    assert sorted(values_of({"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "Enc"]}, tpl)) == ["false", "true"]
    assert values_of({"Fn::FindInMap": ["M", "us-east-1", "Enc"]}, tpl) == ["true"]


def test_select_split_and_unknowns():
    assert values_of({"Fn::Select": ["1", ["a", "b"]]}) == ["b"]
    assert values_of({"Fn::Select": [0, {"Fn::Split": [",", "x,y"]}]}) == ["x"]
    assert isinstance(values_of({"Fn::Select": [5, ["a"]]})[0], Unknown)
    assert isinstance(values_of({"Fn::GetAZs": ""})[0], Unknown)
    assert isinstance(values_of({"Fn::Madeup": 1})[0], Unknown)


def test_import_value_follows_the_exporting_stack():
    producer = {"Resources": {"Key": {"Type": "AWS::KMS::Key"}},
                "Outputs": {"K": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}, "Export": {"Name": "key-arn"}}}}
    consumer = {"Resources": {}}
    app = make_app(producer, consumer)
    assert alternatives({"Fn::ImportValue": "key-arn"}, app.templates[1]) == [ResRef(0, "Key", "Arn")]
    assert isinstance(alternatives({"Fn::ImportValue": "other"}, app.templates[1])[0], Unknown)


def test_nested_stack_parameters_come_from_the_parent():
    parent = {"Resources": {"Key": {"Type": "AWS::KMS::Key"},
                            "Child": {"Type": "AWS::CloudFormation::Stack",
                                      "Properties": {"Parameters": {"KeyArn": {"Fn::GetAtt": ["Key", "Arn"]}}}}}}
    child = {"Parameters": {"KeyArn": {"Type": "String"}, "Mode": {"Type": "String", "Default": "strict"}},
             "Resources": {}}
    app = make_app(parent, child)
    app.templates[1].parent = app.templates[0].resources["Child"]
    assert alternatives({"Ref": "KeyArn"}, app.templates[1]) == [ResRef(0, "Key", "Arn")]
    assert alternatives({"Ref": "Mode"}, app.templates[1]) == ["strict"]  # not passed: the default
    app.templates[1].data["Outputs"] = {"Out": {"Value": {"Ref": "KeyArn"}}}
    assert alternatives({"Fn::GetAtt": ["Child", "Outputs.Out"]}, app.templates[0]) == [ResRef(0, "Key", "Arn")]
    assert isinstance(alternatives({"Fn::GetAtt": ["Child", "Outputs.Nope"]}, app.templates[0])[0], Unknown)


def test_resource_values_walk_lists_and_branches():
    tpl = {"Conditions": {"C": {"Fn::Equals": [{"Ref": "AWS::Region"}, "x"]}},
           "Resources": {"G": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
               "SecurityGroupIngress": [{"CidrIp": "10.0.0.0/8"},
                                        {"Fn::If": ["C", {"CidrIp": "0.0.0.0/0"}, {"Ref": "AWS::NoValue"}]}]}}}}
    r = make_app(tpl).templates[0].resources["G"]
    assert [v for _, v in r.values("SecurityGroupIngress.*.CidrIp")] == ["10.0.0.0/8", "0.0.0.0/0"]
    assert r.values("Missing.Deep") == [("Properties/Missing/Deep", ABSENT)]
    [(path, value)] = r.values("SecurityGroupIngress.Key")
    assert isinstance(value, Unknown)


def test_combinatorial_explosion_is_unknown_not_a_hang():
    tpl = {"Conditions": {}, "Resources": {}}
    branchy = {"Fn::Join": ["", [{"Fn::If": [f"C{i}", "a", "b"]} for i in range(30)]]}
    [value] = values_of(branchy, tpl)
    assert isinstance(value, Unknown)


def test_top_level_properties_read_as_written_or_through_their_intrinsics():
    tpl = {"Conditions": {"C": {"Fn::Equals": [{"Ref": "AWS::Region"}, "x"]}},
           "Resources": {
               "Plain": {"Type": "AWS::S3::Bucket", "Properties": {
                   "AccessControl": "Private", "Tags": [{"Key": "a", "Value": "b"}], "Empty": None,
                   "Key": {"Fn::GetAtt": ["K", "Arn"]}, "One": {"Status": "Enabled"}}},
               "K": {"Type": "AWS::KMS::Key"},
               # the whole Properties mapping chosen by a condition
               "Branchy": {"Type": "AWS::S3::Bucket", "Properties": {
                   "Fn::If": ["C", {"AccessControl": "PublicRead"}, {"AccessControl": "Private"}]}}}}
    resources = make_app(tpl).templates[0].resources
    plain = resources["Plain"]
    assert plain.values("AccessControl") == [("Properties/AccessControl", "Private")]
    assert plain.values("Tags") == [("Properties/Tags", [{"Key": "a", "Value": "b"}])]
    assert plain.values("Empty") == [("Properties/Empty", None)]
    assert plain.values("Missing") == [("Properties/Missing", ABSENT)]
    assert plain.values("Key") == [("Properties/Key", ResRef(0, "K", "Arn"))]
    assert plain.values("One") == [("Properties/One", {"Status": "Enabled"})]
    assert [v for _, v in resources["Branchy"].values("AccessControl")] == ["PublicRead", "Private"]
