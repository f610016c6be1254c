// Delete page: a saved delete link carries its token in the fragment (#token=…), which browsers never
// send to a server, so it stays out of access logs; fill the form's hidden field from it.
(function () {
  "use strict";
  var field = document.querySelector("form.delete-form input[name=token]");
  var match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (field && match && !field.value) field.value = decodeURIComponent(match[1]);
})();
