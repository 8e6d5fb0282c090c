from django import forms


class ActivityForm(forms.Form):
    display_name = forms.CharField(
        max_length=255,
        required=False,
        help_text="Shown instead of the event name on the pages. Leave empty to use the event name.",
    )
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class CsvUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Columns user_id, event, timestamp; optional account_id, message_id and properties.<name>.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
