"""Does what a person does in a browser for the device flow at the test OpenID provider:
open the verification page, enter the code, sign in as the given account, consent."""
import http.cookiejar
import re
import sys
import urllib.parse
import urllib.request

issuer, code, account = sys.argv[1], sys.argv[2], sys.argv[3]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def fetch(url, data=None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    return opener.open(urllib.request.Request(url, data=body)).read().decode()


page = fetch(issuer + "/device")
for _ in range(5):
    if "Sign-in Success" in page:
        break
    action = re.search(r'<form[^>]*action="([^"]+)"', page).group(1)
    fields = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = value.group(1) if value else ""
    if "user_code" in fields and not fields["user_code"]:
        fields["user_code"] = code
    if "login" in fields:
        fields["login"] = account
    if "password" in fields:
        fields["password"] = "any"
    page = fetch(action if action.startswith("http") else issuer + action, fields)
if "Sign-in Success" not in page:
    sys.exit("the device sign-in did not finish")
