"""Written confirmations that anyone can check: a JSON document signed by a KMS asymmetric key.

What is signed: the document's canonical form, `json.dumps(document, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)` encoded as UTF-8. KMS signs its SHA-256 digest
(`MessageType=DIGEST`): one call whatever the document's size (a RAW message is limited to 4 KB).

The algorithm is ECDSA_SHA_256 with an ECC_NIST_P256 key (the key the response stack creates);
RSASSA_PSS_SHA_256 and RSASSA_PKCS1_V1_5_SHA_256 suit an RSA key. All three hash with SHA-256,
which is what a DIGEST signature over our SHA-256 digest requires.

Checking one: `verify(signed, kms, key_id=<the key you trust>)` asks KMS (kms:Verify). Without
AWS access, take the key's public half (kms:GetPublicKey, DER) and check the signature over the
canonical bytes as an ordinary signature: for ECDSA_SHA_256,
`openssl dgst -sha256 -verify public.pem -signature signature.der canonical.json`."""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from .common import ResponseError

DEFAULT_ALGORITHM = "ECDSA_SHA_256"
ALGORITHMS = ("ECDSA_SHA_256", "RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256")
CANONICAL_FORM = 'JSON, keys sorted, separators "," and ":", UTF-8, no ASCII escaping'

# KMS answers these when the signature, the key named in it or the algorithm do not match: all
# mean "this confirmation does not verify", not "we could not check".
_NOT_VALID = {"KMSInvalidSignatureException", "ValidationException", "NotFoundException",
              "InvalidKeyUsageException", "IncorrectKeyException", "InvalidArnException"}


def canonical(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(document: dict, kms, *, key_id: str, algorithm: str = DEFAULT_ALGORITHM) -> dict:
    """The signed confirmation: {"document", "signature" (base64), "key_id" (the key's ARN, as
    KMS reports it), "algorithm"}."""
    response = kms.sign(KeyId=key_id, Message=hashlib.sha256(canonical(document)).digest(),
                        MessageType="DIGEST", SigningAlgorithm=algorithm)
    return {"document": document, "signature": base64.b64encode(response["Signature"]).decode("ascii"),
            "key_id": response["KeyId"], "algorithm": response["SigningAlgorithm"]}


def verify(signed: Any, kms, *, key_id: str | None = None) -> bool:
    """True if `signed["signature"]` is a valid signature of the document by the key.

    Pass `key_id`, the key you trust: the key id inside `signed` is only what its bearer claims,
    and a forger would name their own key there. A malformed or tampered confirmation is False;
    only an error that says nothing about the signature (access denied, throttling, no network)
    raises ResponseError."""
    if not (isinstance(signed, dict) and isinstance(signed.get("document"), dict)
            and isinstance(signed.get("signature"), str) and signed.get("algorithm") in ALGORITHMS):
        return False
    key = key_id or signed.get("key_id")
    if not isinstance(key, str) or not key:
        return False
    try:
        signature = base64.b64decode(signed["signature"], validate=True)
        message = hashlib.sha256(canonical(signed["document"])).digest()
    except (binascii.Error, TypeError, ValueError):  # not base64, or a document that is not JSON
        return False
    if not signature:
        return False
    try:
        response = kms.verify(KeyId=key, Message=message, MessageType="DIGEST", Signature=signature,
                              SigningAlgorithm=signed["algorithm"])
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in _NOT_VALID:
            return False
        raise ResponseError(f"could not verify the confirmation with KMS key {key}: {code}: "
                            f"{e.response.get('Error', {}).get('Message', '')}") from None
    return bool(response.get("SignatureValid"))
